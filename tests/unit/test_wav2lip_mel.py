"""Wav2Lip's mel spectrogram: scale, filter bank, STFT framing, value range and windows per frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.animation.wav2lip.mel import WAV2LIP, _hz_to_mel, _mel_to_hz, mel_basis, mel_windows, melspectrogram

pytestmark = pytest.mark.unit
RATE = WAV2LIP.sample_rate


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_slaney_mel_scale_round_trips_and_has_its_anchors():
    hz = np.array([0.0, 55.0, 500.0, 1000.0, 4000.0, 7600.0])
    assert np.allclose(_mel_to_hz(_hz_to_mel(hz)), hz)
    assert _hz_to_mel(np.array(1000.0)) == pytest.approx(15.0)
    assert _hz_to_mel(np.array(200.0 / 3)) == pytest.approx(1.0)  # linear part: 200/3 Hz per mel
    assert _hz_to_mel(np.array(6400.0)) == pytest.approx(15.0 + 27.0)  # log part: 27 mels per factor 6.4


def test_filter_bank_triangles_cover_55_to_7600_hz_with_equal_area():
    basis = mel_basis()
    assert basis.shape == (80, 401)
    freqs = np.linspace(0, RATE / 2, 401)
    assert basis[:, freqs < 55].sum() == 0 and basis[:, freqs > 7600].sum() == 0
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(55.0)), _hz_to_mel(np.array(7600.0)), 82))
    centres = freqs[np.argmax(basis, axis=1)]
    spacing = RATE / 800
    assert np.all(np.abs(centres - edges[1:-1]) <= spacing)  # each band peaks at its centre frequency
    assert np.all(np.diff(centres) >= 0)
    # Slaney normalisation: each triangle has area ~1 in Hz (bins of 20 Hz); the narrowest bands
    # are sampled too coarsely to integrate well, so look from band 20 on.
    areas = basis.sum(axis=1) * spacing
    assert np.allclose(areas[20:], 1.0, atol=0.05)


def test_stft_framing_matches_torch_centred_reflect_stft():
    from workers.animation.wav2lip.mel import _stft_magnitude

    rng = np.random.default_rng(1)
    x = rng.standard_normal(RATE // 2)
    ours = _stft_magnitude(x, WAV2LIP)
    theirs = torch.stft(torch.from_numpy(x), n_fft=800, hop_length=200, win_length=800,
                        window=torch.hann_window(800, dtype=torch.float64), center=True, pad_mode="reflect",
                        return_complex=True).abs().numpy()
    assert ours.shape == theirs.shape == (401, 1 + len(x) // 200)
    assert np.allclose(ours, theirs, atol=1e-9)


def test_shape_is_80_bands_at_80_frames_per_second_and_values_stay_in_range():
    rng = np.random.default_rng(0)
    for samples in (tone(440, 1.0), rng.uniform(-1, 1, RATE * 2).astype(np.float32), np.zeros(RATE, np.float32)):
        mel = melspectrogram(samples)
        assert mel.dtype == np.float32
        assert mel.shape == (80, 1 + len(samples) // 200)
        assert mel.min() >= -4.0 and mel.max() <= 4.0
    assert np.all(melspectrogram(np.zeros(RATE, np.float32)) == -4.0)  # silence is the floor
    loud = melspectrogram(rng.uniform(-1, 1, RATE).astype(np.float32))
    assert loud[:, 5:-5].mean() > 0.0  # full-scale noise sits in the upper half of the range


def test_a_tone_lights_the_band_of_its_frequency():
    mel = melspectrogram(tone(1000, 1.0))
    centres = _mel_to_hz(np.linspace(_hz_to_mel(np.array(55.0)), _hz_to_mel(np.array(7600.0)), 82))[1:-1]
    band = int(np.argmax(mel[:, 40]))
    assert abs(centres[band] - 1000) < 60


def test_short_and_empty_audio_still_give_a_spectrogram():
    assert melspectrogram(np.zeros(0, np.float32)).shape == (80, 1)
    assert melspectrogram(tone(300, 0.01)).shape == (80, 1 + 160 // 200)


def test_one_16_step_window_per_video_frame():
    mel = melspectrogram(tone(440, 2.0))  # 161 mel frames
    windows = mel_windows(mel, frames=50, fps=25)
    assert windows.shape == (50, 1, 80, 16) and windows.dtype == np.float32
    for i in (0, 1, 7, 30):
        start = int(i * 80 / 25)
        assert np.array_equal(windows[i, 0], mel[:, start:start + 16])
    # Windows that would run past the end are moved left to end with the spectrogram.
    assert np.array_equal(windows[-1, 0], mel[:, -16:])
    at_30 = mel_windows(mel, frames=60, fps=30)
    assert np.array_equal(at_30[9, 0], mel[:, int(9 * 80 / 30):int(9 * 80 / 30) + 16])


def test_a_spectrogram_shorter_than_a_window_is_padded_with_silence():
    mel = melspectrogram(tone(440, 0.05))  # 5 frames
    windows = mel_windows(mel, frames=2, fps=25)
    assert windows.shape == (2, 1, 80, 16)
    assert np.array_equal(windows[0, 0, :, :5], mel) and np.all(windows[0, 0, :, 5:] == -4.0)
    with pytest.raises(ValueError):
        mel_windows(mel, frames=0, fps=25)


def test_the_sparse_filter_bank_product_equals_the_dense_one():
    from workers.animation.wav2lip.mel import WAV2LIP, _apply_mel_basis, mel_basis

    magnitude = np.random.default_rng(3).uniform(0, 2, (WAV2LIP.n_fft // 2 + 1, 57))
    dense = mel_basis().astype(np.float64) @ magnitude
    np.testing.assert_allclose(_apply_mel_basis(magnitude, WAV2LIP), dense, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("samples", [RATE * 4, RATE * 4 + 77, 12_345, 3_000, 500, 100, 0])
def test_segment_windows_computed_in_pieces_equal_the_whole_segments_windows(samples: int):
    from workers.animation.wav2lip.mel import SegmentWindows

    speech = (0.3 * np.random.default_rng(samples).standard_normal(samples)).astype(np.float32)
    frames = max(1, round(samples * 25 / RATE))
    whole = mel_windows(melspectrogram(speech), frames, 25)
    lazy = SegmentWindows(speech, frames, 25)
    assert len(lazy) == frames and lazy.ready == 0
    first = lazy.compute(8)  # a first batch
    assert lazy.ready == min(8, frames) and np.array_equal(first, whole[:8])
    for end in (9, 40, frames + 5):  # past the end: up to the last frame
        lazy.compute(end)
    assert lazy.ready == frames
    assert np.array_equal(lazy.array, whole)  # bit for bit: the same STFT frames of the same padded signal


def test_segment_windows_take_the_rest_from_elsewhere_in_order():
    from workers.animation.wav2lip.mel import SegmentWindows, compute_range

    speech = tone(300, 2.0)
    lazy = SegmentWindows(speech, 50, 25)
    lazy.compute(8)
    rest = compute_range(lazy.padded, lazy.frames, lazy.fps, 8, 50, lazy.params)  # what a mel process returns
    with pytest.raises(ValueError):
        lazy.put(9, rest[1:])
    lazy.put(8, rest)
    assert lazy.ready == 50
    assert np.array_equal(lazy.array, mel_windows(melspectrogram(speech), 50, 25))
    with pytest.raises(ValueError):
        SegmentWindows(speech, 0, 25)


def test_segment_windows_resample_speech_at_another_rate_at_their_first_computation():
    from contracts.audio import resample
    from workers.animation.wav2lip.mel import SegmentWindows

    speech = (0.3 * np.random.default_rng(2).standard_normal(24_000 * 2)).astype(np.float32)
    lazy = SegmentWindows(speech, 50, 25, sample_rate=24_000)
    lazy.compute(50)
    assert np.array_equal(lazy.array, mel_windows(melspectrogram(resample(speech, 24_000, RATE)), 50, 25))


def test_a_process_given_the_speech_alone_computes_the_same_windows():
    from contracts.audio import resample
    from workers.animation.wav2lip.mel import speech_range

    speech = (0.3 * np.random.default_rng(4).standard_normal(24_000)).astype(np.float32)
    whole = mel_windows(melspectrogram(resample(speech, 24_000, RATE)), 25, 25)
    assert np.array_equal(speech_range(speech, 24_000, 25, 25, 0, 8), whole[:8])
    assert np.array_equal(speech_range(speech, 24_000, 25, 25, 8, 25), whole[8:])
