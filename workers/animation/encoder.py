"""Stream BGR frames and the speech track into an MP4 (H.264 + AAC, faststart) through PyAV.

PyAV bundles libx264 and FFmpeg's AAC encoder, so no ``ffmpeg`` binary and no
shell is involved. Frames are encoded as they are written, never held in memory
all at once; the audio is encoded alongside, interleaved with the video.

The video lasts exactly ``frame_count(...)`` frames, which is the audio duration
rounded to whole frames, so the two streams end together (within half a frame).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

log = logging.getLogger(__name__)

# Sample rates the AAC encoder accepts; any other rate is resampled to 44.1 kHz.
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
# The rate the animation stage decodes speech at, for rendering and for joining segments.
SPEECH_RATE = 24_000
FALLBACK_RATE = 44100


@dataclass(frozen=True)
class EncoderOptions:
    """x264 settings of a rendered video.

    ``preset`` trades encoding time for compression; ``tune`` is x264's ``--tune``
    ("" for none). ``zerolatency`` drops the lookahead, B-frames and macroblock tree:
    cheaper per frame and no frame held back, for a larger file at the same CRF
    (BENCHMARKS.md, issue 16, has the measured time, size and quality of each).
    """

    crf: int = 20
    preset: str = "veryfast"
    threads: int = 0  # 0 lets x264 choose
    tune: str = ""


def frame_count(samples: int, sample_rate: int, fps: int) -> int:
    """Frames that cover ``samples`` of audio at ``fps``: round(seconds * fps), at least 1."""
    if sample_rate <= 0 or fps <= 0:
        raise ValueError(f"sample_rate and fps must be positive, got {sample_rate} and {fps}")
    return max(1, int(round(samples * fps / sample_rate)))


def as_mono(audio: np.ndarray) -> np.ndarray:
    """Float32 mono samples in [-1, 1]: downmix a 2-D array, clip, replace NaN/inf by 0."""
    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    if samples.ndim == 2:
        # Channels are the shorter axis: (n, channels) or (channels, n).
        samples = samples.mean(axis=int(np.argmin(samples.shape)))
    elif samples.ndim != 1:
        raise ValueError(f"audio must be 1-D mono samples, got shape {samples.shape}")
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)


class VideoWriter:
    """Write an MP4 frame by frame: H.264 (yuv420p) video plus the speech as AAC mono.

    Use as a context manager; ``write`` takes BGR uint8 frames of ``(height, width, 3)``
    and exactly ``frames_total`` of them must be written before a normal exit. On an
    exception inside the block the partial file is removed.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: int,
        audio: np.ndarray,
        sample_rate: int,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        tune: str = "",
        audio_bitrate: int = 96_000,
        threads: int = 0,
        aac_coder: str = "",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs positive even width and height, got {width}x{height}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.audio = as_mono(audio)
        if len(self.audio) == 0:
            # An empty track muxes badly; one frame of silence keeps the file well formed.
            self.audio = np.zeros(max(1, sample_rate // fps), dtype=np.float32)
        self.sample_rate = sample_rate
        self.frames_total = frame_count(len(self.audio), sample_rate, fps)
        self.frames_written = 0
        self._crf = crf
        self._preset = preset
        self._tune = tune
        self._audio_bitrate = audio_bitrate
        self._threads = threads
        self._aac_coder = aac_coder  # FFmpeg's AAC coder: "" its default (twoloop), "fast" about 8x cheaper
        self._audio_sent = 0
        self._container: av.container.OutputContainer | None = None
        self._video: av.video.stream.VideoStream | None = None
        self._sound: av.audio.stream.AudioStream | None = None

    @property
    def seconds(self) -> float:
        """Duration of the video track."""
        return self.frames_total / self.fps

    def __enter__(self) -> VideoWriter:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the file and its two streams."""
        container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            options = {"crf": str(self._crf), "preset": self._preset}
            if self._tune:
                options["tune"] = self._tune
            video = container.add_stream("libx264", rate=self.fps, options=options)
            video.width = self.width
            video.height = self.height
            video.pix_fmt = "yuv420p"
            video.codec_context.gop_size = 2 * self.fps  # a keyframe every 2 s keeps seeking cheap
            video.codec_context.thread_count = self._threads
            rate = self.sample_rate if self.sample_rate in AAC_RATES else FALLBACK_RATE
            sound = container.add_stream("aac", rate=rate, layout="mono",
                                         options={"aac_coder": self._aac_coder} if self._aac_coder else None)
            sound.bit_rate = self._audio_bitrate
        except Exception:
            container.close()
            self.path.unlink(missing_ok=True)
            raise
        self._container, self._video, self._sound = container, video, sound

    def write(self, frame: np.ndarray) -> None:
        """Encode one BGR uint8 frame of ``(height, width, 3)``, then the audio it covers."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 frame of {(self.height, self.width, 3)}, got {frame.dtype} {frame.shape}"
            )
        self._encode(av.VideoFrame.from_ndarray(frame, format="bgr24"))

    def write_i420(self, frame: np.ndarray) -> None:
        """Encode one frame already in YUV 4:2:0 (I420, ``(height * 3 // 2, width)`` uint8, as OpenCV's
        ``COLOR_BGR2YUV_I420`` gives it): no colour conversion here."""
        if frame.shape != (self.height * 3 // 2, self.width) or frame.dtype != np.uint8:
            raise ValueError(f"expected a uint8 I420 frame of {(self.height * 3 // 2, self.width)}, "
                             f"got {frame.dtype} {frame.shape}")
        self._encode(av.VideoFrame.from_ndarray(frame, format="yuv420p"))

    def _encode(self, picture: av.VideoFrame) -> None:
        if self._container is None or self._video is None:
            raise RuntimeError("VideoWriter is not open")
        if self.frames_written >= self.frames_total:
            raise ValueError(f"the audio covers only {self.frames_total} frames")
        picture.pts = self.frames_written
        self._container.mux(self._video.encode(picture))
        self.frames_written += 1
        if self.frames_written == self.frames_total:
            self._send_audio(len(self.audio))
        else:
            self._send_audio(int(round(self.frames_written * self.sample_rate / self.fps)))

    def close(self) -> None:
        """Flush both encoders and finish the file (the muxer moves ``moov`` to the front)."""
        if self._container is None or self._video is None or self._sound is None:
            return
        if self.frames_written != self.frames_total:
            self.abort()
            raise ValueError(
                f"{self.frames_written} frames written, the audio needs {self.frames_total}"
            )
        self._container.mux(self._video.encode(None))
        self._container.mux(self._sound.encode(None))
        self._container.close()
        self._container = None
        log.debug("wrote %s: %d frames at %d fps", self.path, self.frames_total, self.fps)

    def abort(self) -> None:
        """Close without finishing and remove the partial file."""
        if self._container is not None:
            try:
                self._container.close()
            except av.error.FFmpegError:
                log.debug("closing the aborted %s failed", self.path, exc_info=True)
            self._container = None
        self.path.unlink(missing_ok=True)

    def _send_audio(self, until: int) -> None:
        """Encode the audio samples up to index ``until`` that are not encoded yet."""
        assert self._container is not None and self._sound is not None
        if until <= self._audio_sent:
            return
        chunk = self.audio[self._audio_sent:until]
        sound = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="flt", layout="mono")
        sound.sample_rate = self.sample_rate
        sound.pts = self._audio_sent
        sound.time_base = Fraction(1, self.sample_rate)
        self._container.mux(self._sound.encode(sound))
        self._audio_sent = until
