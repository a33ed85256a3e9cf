"""Audio helpers shared by the coordinator, ASR and animation.

Everything decodes in-process through PyAV (FFmpeg's libraries bundled in the
wheel), so no ``ffmpeg`` binary and no shell is involved. Samples are float32
mono in [-1, 1] everywhere inside the farm; WAV (16-bit PCM mono) is the
on-disk format between stages.
"""

from __future__ import annotations

import io
import logging
import math
import wave
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from contracts.errors import PermanentError

log = logging.getLogger(__name__)

# PyAV raises these for input it cannot make sense of; ValueError covers bad
# parameters PyAV derives from broken headers (e.g. a zero sample rate), and
# OSError what reading a file on a shared volume can raise.
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, OSError, EOFError)


def decode_audio(
    source: bytes | Path, sample_rate: int, *, max_seconds: float | None = None
) -> np.ndarray:
    """Decode any common audio file to float32 mono samples at ``sample_rate``.

    ``source`` is the file's bytes or a path. Handles WAV (8/16/24/32-bit integer
    and float), MP3, Ogg/Opus, Ogg/Vorbis, WebM/Opus, M4A/AAC and FLAC; several
    channels are downmixed. A file cut off mid-stream decodes to the audio it
    holds, as players do, unless nothing decodes at all.

    Raises ``PermanentError`` with code ``bad_audio`` when the input cannot be
    decoded or has no audio stream, ``empty_audio`` when it holds no samples (a
    0-byte file included) and ``audio_too_long`` when it is longer than
    ``max_seconds`` (decoding stops there, so an oversized upload costs no more
    than the limit).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if isinstance(source, Path) and not source.is_file():
        raise PermanentError(f"audio file {source} does not exist", code="bad_audio")
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size == 0:
        raise PermanentError("the audio file is empty (0 bytes)", code="empty_audio")
    opened = io.BytesIO(source) if not isinstance(source, Path) else str(source)
    try:
        container = av.open(opened, mode="r", metadata_errors="ignore")
    except _DECODE_ERRORS as e:
        raise PermanentError(f"cannot read the audio file: {e}", code="bad_audio") from e
    with container:
        if not container.streams.audio:
            raise PermanentError("the file has no audio stream", code="bad_audio")
        return _decode_stream(container, sample_rate, max_seconds)


def _decode_stream(
    container: av.container.InputContainer, sample_rate: int, max_seconds: float | None
) -> np.ndarray:
    stream = container.streams.audio[0]
    # Resample at the stream's own channel layout and average the channels here:
    # FFmpeg's mono downmix adds the channels at -3 dB each, which lifts a
    # correlated stereo signal above full scale and clips it.
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    limit = None if max_seconds is None else int(max_seconds * sample_rate) + 1
    chunks: list[np.ndarray] = []
    total = 0
    failure: Exception | None = None
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                # The resampler keeps its own timeline; input timestamps from
                # broken or concatenated files would only confuse it.
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
                    total += out.samples
            if limit is not None and total > limit:
                raise PermanentError(
                    f"the audio is longer than the limit of {max_seconds:g} s", code="audio_too_long"
                )
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
            total += out.samples
    except _DECODE_ERRORS as e:
        failure = e
    if failure is not None:
        if total == 0:
            raise PermanentError(f"cannot decode the audio: {failure}", code="bad_audio") from failure
        log.warning("audio decoding stopped early after %d samples: %s", total, failure)
    if total == 0:
        raise PermanentError("the audio holds no samples", code="empty_audio")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        raise PermanentError("the audio holds invalid (non-finite) samples", code="bad_audio")
    return np.clip(samples, -1.0, 1.0)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float samples in [-1, 1] as a 16-bit PCM mono WAV file."""
    mono = np.asarray(samples, dtype=np.float32).reshape(-1)
    pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_wav(source: bytes | Path) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file (8/16/32-bit integer) at its own rate: float32 mono samples and the rate.

    The fast path for the farm's own WAV artifacts; use ``decode_audio`` for uploads.
    Raises ``PermanentError`` (``bad_audio``) for anything else.
    """
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as e:
        raise PermanentError(f"not a PCM WAV file: {e}", code="bad_audio") from e
    if width == 1:
        pcm = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = "<i2" if width == 2 else "<i4"
        pcm = np.frombuffer(raw, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise PermanentError(f"unsupported WAV sample width: {width} bytes", code="bad_audio")
    usable = len(pcm) - len(pcm) % channels
    samples = pcm[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples, rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 mono samples from ``from_rate`` to ``to_rate`` (FFmpeg's swresample)."""
    mono = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(1, -1))
    if from_rate == to_rate or mono.size == 0:
        return mono.reshape(-1)
    frame = av.AudioFrame.from_ndarray(mono, format="flt", layout="mono")
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frames = resampler.resample(frame) + resampler.resample(None)
    out = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return out.astype(np.float32, copy=False)


def is_silent(samples: np.ndarray, threshold_dbfs: float = -50.0) -> bool:
    """True when the peak level stays below ``threshold_dbfs`` (digital silence or near it)."""
    if samples.size == 0:
        return True
    peak = float(np.max(np.abs(samples)))
    if peak <= 0.0:
        return True
    return 20.0 * np.log10(peak) < threshold_dbfs


def pad_to_frames(samples: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
    """``samples`` followed by silence up to a whole number of video frames."""
    per_frame = Fraction(sample_rate, fps)
    frames = max(1, math.ceil(len(samples) / per_frame))
    target = int(round(frames * per_frame))
    if target <= len(samples):
        return samples
    return np.concatenate([samples, np.zeros(target - len(samples), dtype=samples.dtype)])
