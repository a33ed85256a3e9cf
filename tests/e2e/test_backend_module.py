"""Adding a backend is one module: a TTS backend written here, outside the tree, runs a job in a real farm.

The module registers itself with the TTS registry; the farm loads it through the
``backend_modules`` setting and selects it by name. Nothing else changes: the
worker publishes its voice in the stage's offer, the coordinator lists it and
accepts it, and the job goes through the TTS and animation stages as any other.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.farm import Farm, farm_fixture
from tests.media import ffprobe

pytestmark = pytest.mark.e2e

BACKEND = '''
"""A TTS backend in one module: a soft tone per word, with word timings."""

import numpy as np

from workers.tts.base import Speech, Timing, TTSBackend, TTSCapabilities, VoiceInfo, registry

RATE = 16_000


@registry.register("tone")
class ToneTTS(TTSBackend):
    version = "1"
    capabilities = TTSCapabilities(languages=("en",))

    def _synthesize(self, text, voice, language):
        pieces, timings, at = [], [], 0.0
        for word in text.split():
            seconds = 0.08 * len(word)
            t = np.arange(int(seconds * RATE)) / RATE
            pieces += [0.3 * np.sin(2 * np.pi * 220 * t), np.zeros(RATE // 20)]
            timings.append(Timing(at, at + seconds, word, "word"))
            at += seconds + 0.05
        return Speech(np.concatenate(pieces).astype(np.float32), RATE, tuple(timings))

    @classmethod
    def list_voices(cls, settings):
        return [VoiceInfo("beep", cls.name, ("en",), default=True)]
'''


@pytest.fixture(scope="module")
def tone_farm(tmp_path_factory: pytest.TempPathFactory, model_settings) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("tone-farm")
    plugins = tmp / "plugins"
    plugins.mkdir()
    (plugins / "tone_tts.py").write_text(textwrap.dedent(BACKEND))
    yield from farm_fixture(tmp, {
        "PYTHONPATH": str(plugins),
        "TALKFARM_BACKEND_MODULES": json.dumps(["tone_tts"]),
        "TALKFARM_TTS__BACKEND": "tone",
        "TALKFARM_TTS__VOICE": "beep",
        "TALKFARM_TTS__BACKEND_FOR_LANGUAGE": "{}",
    })


def test_a_backend_from_one_module_runs_a_job(tone_farm: Farm, portrait_bytes: bytes, tmp_path: Path) -> None:
    with tone_farm.client() as client:
        voices = client.get("/v1/voices").json()
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Hello from a new backend.", "voice": "beep"},
                             files={"portrait": ("portrait.png", portrait_bytes)})
        assert answer.status_code == 202, answer.text
        job = tone_farm.wait_job(answer.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        video = client.get(f"/v1/jobs/{job['job_id']}/video")
    assert voices["voices"] == [{"name": "beep", "backend": "tone", "languages": ["en"], "default": True}]
    assert voices["default_backend"] == "tone"
    assert [s["stage"] for s in job["stages"]] == ["tts", "animation"]
    path = tmp_path / "tone.mp4"
    path.write_bytes(video.content)
    probe = ffprobe(path)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    # Five words of 0.08 s per letter and short gaps, plus the pauses around the sentence.
    assert 1.5 < probe.duration < 4.0
