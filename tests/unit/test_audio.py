"""decode_audio and friends on files made here with PyAV: every common container and codec."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from contracts.audio import decode_audio, is_silent, read_wav, resample, wav_bytes
from contracts.errors import PermanentError

pytestmark = pytest.mark.unit

SECONDS = 1.5


def chirp(rate: int, seconds: float, channels: int) -> np.ndarray:
    """A rising tone at half scale, the same on every channel: shape (channels, samples)."""
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * (220 + 300 * t) * t)
    return np.repeat(tone[None, :], channels, axis=0).astype(np.float32)


def encode(container: str, codec: str, rate: int, channels: int = 1, seconds: float = SECONDS,
           samples: np.ndarray | None = None, options: dict[str, str] | None = None) -> bytes:
    """Encode ``samples`` (channels × n floats; a chirp by default) with PyAV.

    The encoder converts the float frames to its own sample format. ``options``
    go to the muxer: ``{"live": "1"}`` writes WebM as a browser's MediaRecorder
    does (a stream of clusters with no duration and no cues).
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        samples = chirp(rate, seconds, channels) if samples is None else samples
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start:start + 1024]),
                format="fltp",
                layout=stream.layout.name,
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


FORMATS = [
    pytest.param("wav", "pcm_u8", 8000, 1, id="wav-8bit-8k"),
    pytest.param("wav", "pcm_u8", 11025, 2, id="wav-8bit-11k-stereo"),
    pytest.param("wav", "pcm_s16le", 44100, 2, id="wav-16bit-44k-stereo"),
    pytest.param("wav", "pcm_s16le", 8000, 1, id="wav-16bit-8k"),
    pytest.param("wav", "pcm_s16le", 16000, 1, id="wav-16bit-16k"),
    pytest.param("wav", "pcm_s24le", 44100, 1, id="wav-24bit-44k"),
    pytest.param("wav", "pcm_s24le", 48000, 2, id="wav-24bit-48k-stereo"),
    pytest.param("wav", "pcm_s32le", 44100, 2, id="wav-32bit-44k-stereo"),
    pytest.param("wav", "pcm_s32le", 16000, 1, id="wav-32bit-16k"),
    pytest.param("wav", "pcm_f32le", 22050, 1, id="wav-float-22k"),
    pytest.param("wav", "pcm_f32le", 96000, 2, id="wav-float-96k-stereo"),
    pytest.param("mp3", "libmp3lame", 44100, 2, id="mp3"),
    pytest.param("mp3", "libmp3lame", 22050, 1, id="mp3-22k-mono"),
    pytest.param("ogg", "libopus", 48000, 1, id="ogg-opus"),
    pytest.param("webm", "libopus", 48000, 2, id="webm-opus"),
    pytest.param("ipod", "aac", 44100, 2, id="m4a-aac"),
    pytest.param("ipod", "aac", 16000, 1, id="m4a-aac-16k-mono"),
    pytest.param("flac", "flac", 44100, 1, id="flac"),
    pytest.param("flac", "flac", 96000, 2, id="flac-96k-stereo"),
]


@pytest.mark.parametrize("container, codec, rate, channels", FORMATS)
@pytest.mark.parametrize("target_rate", [16000, 22050])
def test_decodes_common_formats(
    container: str, codec: str, rate: int, channels: int, target_rate: int
) -> None:
    samples = decode_audio(encode(container, codec, rate, channels), target_rate)

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    # AAC adds an encoder delay and pads the last frame: 1024-sample frames are 64 ms at 16 kHz.
    tolerance = 2048 / rate if codec == "aac" else 0.05
    assert len(samples) / target_rate == pytest.approx(SECONDS, abs=tolerance)
    # Channels are averaged, not summed: the half-scale chirp stays near half scale.
    assert 0.3 < float(np.max(np.abs(samples))) < 0.75


@pytest.mark.parametrize("channels", [1, 2])
def test_decodes_webm_opus_as_media_recorder_writes_it(channels: int) -> None:
    data = encode("webm", "libopus", 48000, channels, options={"live": "1"})
    assert data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a Matroska/WebM file

    samples = decode_audio(data, 16000)

    assert len(samples) / 16000 == pytest.approx(SECONDS, abs=0.05)
    assert 0.3 < float(np.max(np.abs(samples))) < 0.75


def test_decodes_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "speech.flac"
    path.write_bytes(encode("flac", "flac", 44100))

    assert len(decode_audio(path, 16000)) / 16000 == pytest.approx(SECONDS, abs=0.05)


def test_wav_round_trip() -> None:
    original = chirp(16000, SECONDS, 1)[0]
    data = wav_bytes(original, 16000)

    samples, rate = read_wav(data)
    decoded = decode_audio(data, 16000)

    assert rate == 16000
    np.testing.assert_allclose(samples, original, atol=1e-4)
    np.testing.assert_allclose(decoded, original, atol=1e-4)


def test_resample_keeps_duration() -> None:
    out = resample(chirp(22050, SECONDS, 1)[0], 22050, 16000)

    assert out.dtype == np.float32
    assert len(out) == pytest.approx(SECONDS * 16000, abs=50)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"this is not audio at all " * 200, id="text"),
        pytest.param(np.random.default_rng(1).bytes(20_000), id="random-bytes"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", id="truncated-wav-header"),
        pytest.param(encode("ipod", "aac", 44100)[:4000], id="truncated-m4a"),
        pytest.param(encode("ogg", "libopus", 48000)[:50], id="truncated-ogg"),
    ],
)
def test_undecodable_input_is_bad_audio(data: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_audio(data, 16000)
    assert caught.value.code == "bad_audio"


def test_file_cut_mid_stream_keeps_what_it_holds() -> None:
    data = encode("mp3", "libmp3lame", 44100)

    samples = decode_audio(data[: len(data) // 2], 16000)

    assert 0.5 < len(samples) / 16000 < SECONDS


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="zero-length-file"),
        pytest.param(wav_bytes(np.zeros(0, dtype=np.float32), 16000), id="wav-with-zero-samples"),
    ],
)
def test_no_samples_is_empty_audio(data: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_audio(data, 16000)
    assert caught.value.code == "empty_audio"


def test_file_without_audio_stream_is_bad_audio() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 64
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

    with pytest.raises(PermanentError) as caught:
        decode_audio(buffer.getvalue(), 16000)
    assert caught.value.code == "bad_audio"
    assert "no audio stream" in caught.value.message


def test_missing_path_is_bad_audio(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        decode_audio(tmp_path / "nope.wav", 16000)
    assert caught.value.code == "bad_audio"


def test_max_seconds_stops_decoding() -> None:
    with pytest.raises(PermanentError) as caught:
        decode_audio(encode("wav", "pcm_s16le", 16000), 16000, max_seconds=0.5)
    assert caught.value.code == "audio_too_long"


def test_is_silent() -> None:
    assert is_silent(np.zeros(16000, dtype=np.float32))
    assert is_silent(np.full(16000, 1e-4, dtype=np.float32))
    assert is_silent(np.zeros(0, dtype=np.float32))
    assert not is_silent(chirp(16000, 0.1, 1)[0])
    assert not is_silent(chirp(16000, 0.1, 1)[0], threshold_dbfs=-60.0)
