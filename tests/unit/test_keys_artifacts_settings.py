from __future__ import annotations

import threading

import pytest

from cache.keys import content_hash, render_key, request_key
from contracts.artifacts import ArtifactStore, is_key
from contracts.settings import Settings

pytestmark = pytest.mark.unit


def test_content_hash_separates_parts():
    assert content_hash("ab", "c") != content_hash("a", "bc")
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})


def test_render_key_changes_with_every_input():
    base = render_key("p", "s", "landmark", "1", {"fps": 25})
    assert base != render_key("p2", "s", "landmark", "1", {"fps": 25})
    assert base != render_key("p", "s2", "landmark", "1", {"fps": 25})
    assert base != render_key("p", "s", "landmark", "2", {"fps": 25})
    assert base != render_key("p", "s", "landmark", "1", {"fps": 30})


def test_request_key_depends_on_history():
    k1 = request_key("chat", "p", "q", {}, [], {"llm": {"model": "m"}})
    k2 = request_key("chat", "p", "q", {}, [{"role": "user", "content": "hi"}], {"llm": {"model": "m"}})
    assert k1 != k2


def test_artifacts_are_content_addressed_and_safe(tmp_path):
    store = ArtifactStore(tmp_path)
    a = store.put_bytes(b"hello", "wav")
    assert is_key(a.key) and store.read_bytes(a.key) == b"hello"
    assert store.put_bytes(b"hello", "wav").key == a.key
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
    assert not list(store.path(a.key).parent.glob(".partial-*"))


def test_concurrent_writers_of_the_same_content(tmp_path):
    store = ArtifactStore(tmp_path)
    data = bytes(range(256)) * 4096
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(store.put_bytes(data, "bin").key)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and store.read_bytes(keys[0]) == data


def test_put_file_copies(tmp_path):
    source = tmp_path / "x.mp4"
    source.write_bytes(b"video")
    store = ArtifactStore(tmp_path / "store")
    artifact = store.put_file(source, "mp4")
    assert source.exists() and store.read_bytes(artifact.key) == b"video"


def test_settings_from_nested_environment(monkeypatch):
    monkeypatch.setenv("TALKFARM_ASR__BEAM_SIZE", "5")
    monkeypatch.setenv("TALKFARM_LIMITS__MAX_TEXT_CHARS", "42")
    monkeypatch.setenv("TALKFARM_QUEUE_PREFIX", "x-")
    settings = Settings()
    assert settings.asr.beam_size == 5 and settings.limits.max_text_chars == 42
    assert settings.queue_name("asr") == "x-asr"
    assert settings.db_url.startswith("sqlite:///")
