from __future__ import annotations

import threading

import pytest

from contracts.errors import PermanentError, StageTimeout, TransientError, UnknownBackendError
from contracts.settings import Settings
from pipeline.calls import backend_call
from pipeline.registry import Registry
from tests.fakes.backends import FakeASR, FakeTTS

pytestmark = pytest.mark.unit


def test_unknown_backend_lists_the_valid_ones():
    from workers.tts.base import registry

    with pytest.raises(UnknownBackendError) as info:
        registry.get("espeak-in-a-box")
    assert "piper" in str(info.value) and info.value.code == "unknown_backend"


def test_every_stage_registers_its_embedded_backend():
    import importlib

    expected = {"asr": "faster-whisper", "llm": "transformers", "tts": "piper", "animation": "landmark"}
    for stage, name in expected.items():
        assert name in importlib.import_module(f"workers.{stage}.base").registry.names()


def test_registering_a_name_twice_raises():
    registry: Registry[object] = Registry("demo", "workers.asr.backends")
    registry.register("one")(type("A", (), {}))
    with pytest.raises(ValueError, match="twice"):
        registry.register("one")(type("B", (), {}))


def test_load_is_idempotent_and_thread_safe():
    asr = FakeASR(Settings())
    threads = [threading.Thread(target=asr.load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert asr.knobs.loads == 1 and asr.loaded
    asr.unload()
    assert not asr.loaded


def test_backend_boundary_translates_vendor_errors():
    with pytest.raises(PermanentError) as info:
        with backend_call("tts", "demo"):
            raise RuntimeError("onnx exploded")
    assert info.value.code == "tts_failed" and isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(TransientError):
        with backend_call("tts", "demo"):
            raise MemoryError()
    with pytest.raises(StageTimeout):
        with backend_call("tts", "demo"):
            raise TimeoutError("slow")


def test_classified_errors_pass_through_the_public_method():
    tts = FakeTTS(Settings())
    tts.knobs.fail_with = PermanentError("no such voice", code="unknown_voice")
    with pytest.raises(PermanentError) as info:
        tts.synthesize("hello")
    assert info.value.code == "unknown_voice"
    assert not TransientError("x").code == info.value.code
