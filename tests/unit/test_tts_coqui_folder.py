"""The coqui backend's folder handling, which needs no torch: voices, checks and configs from a training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.errors import ModelMissingError
from contracts.settings import CoquiSettings, Settings, TTSSettings
from workers.tts.backends.coqui import CoquiTTS, find_checkpoint

pytestmark = pytest.mark.unit


def settings_for(model_dir: Path, model: str, **coqui: str) -> Settings:
    return Settings(model_dir=model_dir, tts=TTSSettings(coqui=CoquiSettings(model=model, **coqui)))


def make_folder(root: Path, name: str, config: dict, files: dict[str, str]) -> Path:
    folder = root / "coqui" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


def test_not_configured(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "")
    assert CoquiTTS.list_voices(settings) == []
    with pytest.raises(ModelMissingError, match="TALKFARM_TTS__COQUI__MODEL"):
        CoquiTTS(settings).check()


def test_missing_config_and_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="config.json"):
        CoquiTTS(settings_for(tmp_path, "absent")).check()
    make_folder(tmp_path, "empty", {"model": "vits"}, {})
    with pytest.raises(ModelMissingError, match="no checkpoint"):
        CoquiTTS(settings_for(tmp_path, "empty")).check()


def test_multi_speaker_voices_and_languages(tmp_path: Path) -> None:
    make_folder(tmp_path, "yourtts", {"model": "vits"}, {
        "model.pth": "x", "speaker_ids.json": json.dumps({"alice": 0, "bob": 1}),
        "language_ids.json": json.dumps({"en": 0, "pt-br": 1}),
    })
    voices = CoquiTTS.list_voices(settings_for(tmp_path, "yourtts", speaker="bob"))
    assert [(v.name, v.default) for v in voices] == [("yourtts", False), ("alice", False), ("bob", True)]
    assert all(v.languages == ("en", "pt") and v.backend == "coqui" for v in voices)
    CoquiTTS(settings_for(tmp_path, "yourtts")).check()


def test_xtts_folder_is_its_own_checkpoint(tmp_path: Path) -> None:
    config = {"model": "xtts", "languages": ["en", "zh-cn", "de"]}
    folder = make_folder(tmp_path, "xtts", config, {"model.pth": "x", "vocab.json": "{}"})
    assert find_checkpoint(folder, config) == folder
    voices = CoquiTTS.list_voices(settings_for(tmp_path, str(folder)))  # an absolute path works too
    assert [v.name for v in voices] == ["xtts"] and voices[0].languages == ("en", "zh", "de")


def test_training_paths_point_into_the_folder(tmp_path: Path) -> None:
    config = {"model": "vits", "model_args": {"speakers_file": "/train/run/speakers.pth", "d_vector_file": None}}
    folder = make_folder(tmp_path, "vits", config, {"model.pth": "x", "speakers.pth": "x"})
    backend = CoquiTTS(settings_for(tmp_path, "vits"))
    local = backend._local_config(folder, json.loads((folder / "config.json").read_text()))
    assert local != folder / "config.json"
    assert json.loads(local.read_text())["model_args"]["speakers_file"] == str(folder / "speakers.pth")
    backend._unload()
    assert not local.exists()
    # Nothing to fix: the folder's own config is used.
    plain = make_folder(tmp_path, "plain", {"model": "vits"}, {"model.pth": "x"})
    assert backend._local_config(plain, {"model": "vits"}) == plain / "config.json"


def test_model_id_changes_with_the_checkpoint(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "vits", {"model": "vits"}, {"model.pth": "x"})
    backend = CoquiTTS(settings_for(tmp_path, "vits"))
    before = backend.model_id(None)
    (folder / "model.pth").write_text("a longer checkpoint")
    assert backend.model_id(None) != before
    assert backend.voice_id(None) == "vits"
