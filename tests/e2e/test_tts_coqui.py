"""The coqui backend for real: small randomly initialised Coqui models, saved as Coqui saves them, loaded and run.

Nothing here is downloaded: each test builds a model of the real architecture
(VITS with two named speakers, Tacotron2 with Griffin-Lim) with random weights,
writes ``config.json`` and ``model.pth`` into a folder as a training run would,
and loads that folder through ``CoquiTTS``. Random weights speak noise, so the
tests check the plumbing: loading, speakers, output format, level and timings.

coqui-tts imports torchaudio, which must match torch; on this project's CPU
machines (torch 2.13, no matching torchaudio) the module is skipped, and the test
runs on the GPU machine (see BENCHMARKS.md for the command).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import PermanentError
from contracts.settings import CoquiSettings, Settings, TTSSettings
from workers.tts.base import registry
from workers.tts.loudness import loudness_dbfs

pytestmark = pytest.mark.e2e

try:
    import torch
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.tacotron2 import Tacotron2
    from TTS.tts.models.vits import Vits, VitsArgs
except (ImportError, OSError) as error:  # torchaudio built for another torch fails with OSError
    pytest.skip(f"coqui-tts cannot be imported here: {error}", allow_module_level=True)

SPEAKERS = {"alice": 0, "bob": 1}


def build_vits(folder: Path) -> Path:
    """A tiny two-speaker VITS whose config points at a speakers file on the 'training machine'."""
    folder.mkdir(parents=True)
    speakers = folder / "speaker_ids.json"
    speakers.write_text(json.dumps(SPEAKERS))
    args = VitsArgs(
        hidden_channels=32, hidden_channels_ffn_text_encoder=64, num_layers_text_encoder=1,
        num_layers_posterior_encoder=1, num_layers_flow=1, upsample_initial_channel_decoder=32,
        resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3, 5]], use_sdp=False,
        use_speaker_embedding=True, speakers_file=str(speakers), speaker_embedding_channels=16,
        init_discriminator=False,
    )
    config = VitsConfig(model_args=args, use_phonemes=False, text_cleaner="basic_cleaners")
    torch.manual_seed(0)
    model = Vits(config)
    assert model.num_speakers == 2
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.model_args.speakers_file = "/home/trainer/run-7/speaker_ids.json"  # as a training run leaves it
    config.save_json(str(folder / "config.json"))
    return folder


def build_tacotron2(folder: Path) -> Path:
    folder.mkdir(parents=True)
    config = Tacotron2Config(use_phonemes=False, text_cleaner="basic_cleaners", max_decoder_steps=80,
                             r=2, stopnet=True)
    torch.manual_seed(0)
    model = Tacotron2(config)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def settings_for(folder: Path, **coqui: str) -> Settings:
    tts = TTSSettings(backend="coqui", sample_rate=16000, coqui=CoquiSettings(model=folder.name, **coqui))
    return Settings(model_dir=folder.parent.parent, tts=tts)


@pytest.fixture(scope="module")
def vits_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vits(tmp_path_factory.mktemp("models") / "coqui" / "tiny-vits")


def test_vits_folder_loads_and_speaks(vits_folder: Path) -> None:
    settings = settings_for(vits_folder)
    voices = {v.name for v in registry.get("coqui").list_voices(settings)}
    assert voices == {"tiny-vits", "alice", "bob"}

    backend = registry.create("coqui", settings)
    backend.load()
    speech = backend.synthesize("Hello there. How are you today?")

    assert speech.sample_rate == 16000
    assert 0.2 < speech.seconds < 30
    assert np.all(np.isfinite(speech.samples)) and float(np.abs(speech.samples).max()) <= 1.0
    assert abs(loudness_dbfs(speech.samples, speech.sample_rate) - settings.tts.loudness_dbfs) < 1.5
    assert [t.label for t in speech.timings] == ["Hello", "there", "How", "are", "you", "today"]
    assert all(t.kind == "word" for t in speech.timings) and not speech.timings_from_model
    assert speech.timings[-1].end <= speech.seconds


def test_vits_speakers_are_voices(vits_folder: Path) -> None:
    backend = registry.create("coqui", settings_for(vits_folder))
    alice = backend.synthesize("Good morning.", voice="alice")
    bob = backend.synthesize("Good morning.", voice="bob")
    assert not (len(alice.samples) == len(bob.samples) and np.allclose(alice.samples, bob.samples))

    with pytest.raises(PermanentError) as caught:
        backend.synthesize("Good morning.", voice="carol")
    assert caught.value.code == "unknown_voice"


def test_vits_runs_on_the_gpu_when_there_is_one(vits_folder: Path) -> None:
    backend = registry.create("coqui", settings_for(vits_folder))
    backend.load()
    device = next(backend._synth.tts_model.parameters()).device.type  # type: ignore[attr-defined]
    assert device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_tacotron2_with_griffin_lim(tmp_path: Path) -> None:
    folder = build_tacotron2(tmp_path / "coqui" / "tiny-tacotron2")
    backend = registry.create("coqui", settings_for(folder))
    speech = backend.synthesize("Nice to meet you.")
    assert speech.sample_rate == 16000
    assert speech.seconds > 0.05
    assert np.all(np.isfinite(speech.samples))
