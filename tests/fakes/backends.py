"""Fake backends, one per stage, with knobs for delay and failure. For unit tests of logic only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from contracts.errors import StageError
from contracts.payload import Turn
from contracts.settings import Settings
from workers.animation.base import AnimationBackend, RenderRequest, RenderResult
from workers.asr.base import ASRBackend, Transcription
from workers.llm.base import GenerationOptions, LLMBackend
from workers.tts.base import Speech, TTSBackend


@dataclass
class Knobs:
    delay: float = 0.0
    fail_with: StageError | Exception | None = None
    calls: int = 0
    loads: int = 0
    seen: list[object] = field(default_factory=list)

    def step(self, arg: object) -> None:
        self.calls += 1
        self.seen.append(arg)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with


class FakeASR(ASRBackend):
    name = "fake"

    def __init__(self, settings: Settings, text: str = "hello there") -> None:
        super().__init__(settings)
        self.knobs, self.text = Knobs(), text

    def _load(self) -> None:
        self.knobs.loads += 1

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription:
        self.knobs.step(audio)
        return Transcription(self.text, language or "en", 0.99, len(audio) / 16000)


class FakeLLM(LLMBackend):
    name = "fake"

    def __init__(self, settings: Settings, reply: str = "Nice to meet you.") -> None:
        super().__init__(settings)
        self.knobs, self.text = Knobs(), reply

    def _reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str:
        self.knobs.step(list(messages))
        return self.text


class FakeTTS(TTSBackend):
    name = "fake"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.knobs = Knobs()

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        self.knobs.step(text)
        t = np.arange(int(0.1 * len(text) * 16000)) / 16000
        return Speech((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


class FakeAnimator(AnimationBackend):
    name = "fake"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.knobs = Knobs()

    def _render(self, request: RenderRequest) -> RenderResult:
        self.knobs.step(request)
        request.output.write_bytes(b"fake mp4 " + request.portrait[:16])
        seconds = len(request.audio) / request.sample_rate
        return RenderResult(frames=round(seconds * 25), width=64, height=64, seconds=seconds)
