"""Wav2Lip's mel spectrogram and its 16-step windows per video frame, in numpy alone.

The numbers are Wav2Lip's ``hparams.py``: 16 kHz audio, pre-emphasis 0.97, a centred
STFT (n_fft 800, hop 200, Hann window 800, reflect padding as librosa 0.7 did), 80
Slaney mel bands between 55 and 7600 Hz (librosa's default filter bank), amplitude to
dB with a floor of -100 dB, minus the reference level of 20 dB, then scaled
symmetrically to [-4, 4] and clipped. That gives 80 mel frames per second; video
frame ``i`` at ``fps`` takes the 16 frames starting at ``int(i * 80 / fps)`` (the last
windows are moved left to stay inside the spectrogram, as Wav2Lip's inference does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MelParams:
    """Wav2Lip's audio hyperparameters; networks trained on them expect exactly these."""

    sample_rate: int = 16_000
    n_fft: int = 800
    hop: int = 200
    win: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    window_steps: int = 16  # mel frames per network input

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop


WAV2LIP = MelParams()


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@lru_cache(maxsize=4)
def mel_basis(params: MelParams = WAV2LIP) -> np.ndarray:
    """The ``(n_mels, n_fft // 2 + 1)`` Slaney-normalised triangular filter bank."""
    if params.fmax > params.sample_rate / 2:
        raise ValueError(f"fmax {params.fmax} is above the Nyquist frequency of {params.sample_rate} Hz")
    fft_freqs = np.linspace(0.0, params.sample_rate / 2, params.n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(np.array(params.fmin)), _hz_to_mel(np.array(params.fmax)), params.n_mels + 2)
    hz_points = _mel_to_hz(mel_points)
    spacing = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / spacing[:-1, None]
    upper = ramps[2:] / spacing[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]  # equal area per band
    basis: np.ndarray = weights.astype(np.float32)
    basis.setflags(write=False)
    return basis


@lru_cache(maxsize=4)
def _mel_bands(params: MelParams = WAV2LIP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filter bank's nonzero weights band by band: (bins, weights, first entry of each band)."""
    basis = mel_basis(params).astype(np.float64)
    bands, bins = np.nonzero(basis)  # row-major: grouped by band, bins ascending
    starts = np.searchsorted(bands, np.arange(params.n_mels))
    return bins, basis[bands, bins], starts


def _apply_mel_basis(magnitude: np.ndarray, params: MelParams) -> np.ndarray:
    """``mel_basis(params) @ magnitude`` over the filters' nonzero weights alone, without BLAS.

    A triangle covers a few bins, so this is a twentieth of the dense product's arithmetic, and it
    stays on the calling thread: the dense product went to OpenBLAS, which ran it on a thread per
    core that then kept spinning, on a machine whose cores encode video.
    """
    bins, weights, starts = _mel_bands(params)
    if len(bins) == 0 or np.any(np.diff(np.append(starts, len(bins))) == 0):  # an empty band: the dense product
        return mel_basis(params).astype(np.float64) @ magnitude
    weighted = magnitude[bins] * weights[:, None]
    summed: np.ndarray = np.add.reduceat(weighted, starts, axis=0)
    return summed


def _padded(samples: np.ndarray, params: MelParams) -> np.ndarray:
    """The pre-emphasised samples (float64) with the centred STFT's padding: what every frame is cut from."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        x = np.zeros(1)
    emphasised = np.concatenate([x[:1], x[1:] - params.preemphasis * x[:-1]])
    return _pad(emphasised, params)


def _pad(samples: np.ndarray, params: MelParams) -> np.ndarray:
    pad = params.n_fft // 2
    mode = "reflect" if len(samples) > pad else "constant"
    padded: np.ndarray = np.pad(samples, pad, mode=mode)  # type: ignore[call-overload]
    if len(padded) < params.n_fft:
        padded = np.pad(padded, (0, params.n_fft - len(padded)))
    return padded


def _frame_count(padded: np.ndarray, params: MelParams) -> int:
    return 1 + (len(padded) - params.n_fft) // params.hop


@lru_cache(maxsize=4)
def _window(params: MelParams) -> np.ndarray:
    window = np.zeros(params.n_fft, dtype=np.float64)
    offset = (params.n_fft - params.win) // 2
    window[offset:offset + params.win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(params.win) / params.win)
    window.setflags(write=False)
    return window


def _stft_frames(padded: np.ndarray, start: int, stop: int, params: MelParams) -> np.ndarray:
    """|STFT| of frames ``start:stop`` of the padded signal, ``(n_fft // 2 + 1, stop - start)``."""
    piece = padded[start * params.hop:(stop - 1) * params.hop + params.n_fft]
    # The frames as a strided view of the samples (no gathered copy); the window's product is the one copy.
    framed = np.lib.stride_tricks.sliding_window_view(piece, params.n_fft)[::params.hop][:stop - start]
    spectrum = np.fft.rfft(framed * _window(params), axis=1)
    magnitude: np.ndarray = np.abs(spectrum).T
    return magnitude


def _stft_magnitude(samples: np.ndarray, params: MelParams) -> np.ndarray:
    """|STFT| as ``(n_fft // 2 + 1, frames)``, centred, with a periodic Hann window."""
    padded = _pad(samples, params)
    return _stft_frames(padded, 0, _frame_count(padded, params), params)


def _normalised_mel(padded: np.ndarray, start: int, stop: int, params: MelParams) -> np.ndarray:
    """Mel frames ``start:stop`` of the padded, pre-emphasised signal, normalised (float32)."""
    mel = _apply_mel_basis(_stft_frames(padded, start, stop, params), params)
    floor = 10.0 ** (params.min_level_db / 20.0)
    db = 20.0 * np.log10(np.maximum(floor, mel)) - params.ref_level_db
    top = params.max_abs_value
    scaled = 2 * top * (db - params.min_level_db) / -params.min_level_db - top
    return np.clip(scaled, -top, top).astype(np.float32)


def melspectrogram(samples: np.ndarray, params: MelParams = WAV2LIP) -> np.ndarray:
    """Wav2Lip's normalised mel spectrogram of mono audio at ``params.sample_rate``.

    Returns float32 ``(n_mels, 1 + len(samples) // hop)`` in ``[-max_abs_value, max_abs_value]``.
    """
    padded = _padded(samples, params)
    return _normalised_mel(padded, 0, _frame_count(padded, params), params)


def mel_windows(mel: np.ndarray, frames: int, fps: float, params: MelParams = WAV2LIP) -> np.ndarray:
    """One ``(1, n_mels, window_steps)`` window per video frame: float32 ``(frames, 1, n_mels, steps)``.

    A spectrogram shorter than one window is padded with silence (the lowest value).
    """
    if frames <= 0 or fps <= 0:
        raise ValueError(f"frames and fps must be positive, got {frames} and {fps}")
    steps = params.window_steps
    if mel.shape[1] < steps:
        mel = np.pad(mel, ((0, 0), (0, steps - mel.shape[1])), constant_values=-params.max_abs_value)
    index = _window_starts(frames, fps, mel.shape[1], params)[:, None] + np.arange(steps)[None, :]
    windows = mel[:, index]  # (n_mels, frames, steps)
    return np.ascontiguousarray(windows.transpose(1, 0, 2)[:, None], dtype=np.float32)


def _window_starts(frames: int, fps: float, mel_frames: int, params: MelParams) -> np.ndarray:
    """The first mel frame of each video frame's window (the last ones moved left to stay inside)."""
    starts = (np.arange(frames) * (params.frames_per_second / fps)).astype(np.int64)
    return np.minimum(starts, max(mel_frames, params.window_steps) - params.window_steps)


class SegmentWindows:
    """A segment's mel windows computed in pieces: frames ``0:n`` now, the rest later or elsewhere.

    ``mel_windows(melspectrogram(samples), frames, fps)`` costs a few milliseconds of numpy for
    a few seconds of speech, all of it before the first frame could start. Here ``compute(n)``
    computes only the mel frames that windows ``ready:n`` read (an STFT of that stretch of the
    whole padded signal, so every value is the whole segment's, bit for bit): a render can
    start on its first batch's windows and have the rest computed afterwards, by itself or by
    another process (``compute_range`` is a plain function of picklable arguments).
    ``array`` holds the windows ``(frames, 1, n_mels, steps)``; ``ready`` says how many are in.

    Speech at another ``sample_rate`` than the network's is resampled (``contracts.audio.resample``,
    FFmpeg's) at the first ``compute``, not here: whoever computes the first windows pays for it.
    """

    def __init__(self, samples: np.ndarray, frames: int, fps: float, params: MelParams = WAV2LIP,
                 sample_rate: int | None = None) -> None:
        if frames <= 0 or fps <= 0:
            raise ValueError(f"frames and fps must be positive, got {frames} and {fps}")
        self.params = params
        self.frames = frames
        self.fps = fps
        self.samples = samples
        self.sample_rate = sample_rate or params.sample_rate
        self._padded: np.ndarray | None = None
        self.array = np.empty((frames, 1, params.n_mels, params.window_steps), dtype=np.float32)
        self.ready = 0

    @property
    def padded(self) -> np.ndarray:
        """The pre-emphasised speech at the network's rate with the STFT's padding (made at first use)."""
        if self._padded is None:
            self._padded = _resampled_padded(self.samples, self.sample_rate, self.params)
        return self._padded

    def __len__(self) -> int:
        return self.frames

    def compute(self, end: int) -> np.ndarray:
        """Windows up to frame ``end`` (at most ``frames``) computed; returns ``array[:end]``."""
        end = min(end, self.frames)
        if end > self.ready:
            self.put(self.ready, compute_range(self.padded, self.frames, self.fps, self.ready, end, self.params))
        return self.array[:end]

    def put(self, start: int, windows: np.ndarray) -> None:
        """Windows ``start:start + len(windows)`` computed elsewhere; ``start`` must be ``ready``."""
        if start != self.ready:
            raise ValueError(f"windows must come in order: got {start}, expected {self.ready}")
        self.array[start:start + len(windows)] = windows
        self.ready = start + len(windows)


def _resampled_padded(samples: np.ndarray, sample_rate: int, params: MelParams) -> np.ndarray:
    if sample_rate != params.sample_rate:
        from contracts.audio import resample

        samples = resample(samples, sample_rate, params.sample_rate)
    return _padded(samples, params)


def speech_range(samples: np.ndarray, sample_rate: int, frames: int, fps: float, start: int, end: int,
                 params: MelParams = WAV2LIP) -> np.ndarray:
    """``compute_range`` from the speech itself (resampled here): what a process is given, the speech alone."""
    return compute_range(_resampled_padded(samples, sample_rate, params), frames, fps, start, end, params)


def warm() -> bool:
    """Nothing: a mel process that ran it has started and imported this module."""
    return True


def compute_range(padded: np.ndarray, frames: int, fps: float, start: int, end: int,
                  params: MelParams = WAV2LIP) -> np.ndarray:
    """Windows ``start:end`` of a segment of ``frames`` frames, from its padded signal (``SegmentWindows``)."""
    steps = params.window_steps
    total = _frame_count(padded, params)
    if total < steps:  # shorter than one window: the whole (padded) spectrogram, as mel_windows does
        return mel_windows(_normalised_mel(padded, 0, total, params), frames, fps, params)[start:end]
    starts = _window_starts(frames, fps, total, params)[start:end]
    first, last = int(starts[0]), int(starts[-1]) + steps
    mel = _normalised_mel(padded, first, last, params)
    index = (starts - first)[:, None] + np.arange(steps)[None, :]
    return np.ascontiguousarray(mel[:, index].transpose(1, 0, 2)[:, None], dtype=np.float32)
