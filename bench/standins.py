"""Instant stand-in backends for the four stages, for soak runs and fault tests of the farm's machinery.

Load them into a farm with the settings in ``STANDIN_ENV`` (the registries import
this module through ``TALKFARM_BACKEND_MODULES``; each stage then names its
``standin`` backend). Every one answers at once with a plausible output, so what
a run measures is the farm: the coordinator, the broker, the stores and the hand-on
between stages, with no model time.

* ASR: a question that depends on the audio's length;
* LLM: a three-sentence reply that quotes the question, streamed word by word;
* TTS: a soft tone per word with word timings, at 16 kHz;
* animation: a small grey picture whose brightness follows the speech, written
  through the stage's ``video_writer`` (H.264 + AAC, as the real backends write).

Two knobs for fault tests, set per farm in the environment as JSON objects by stage:
``TALKFARM_STANDIN_DELAY='{"animation": 5}'`` makes that stage's stand-in take 5 s
(time to kill its worker mid-task); ``TALKFARM_STANDIN_POISON='{"tts": "poison"}'``
makes it SIGKILL its own process, as a native crash would, whenever its input text
holds that word (the ASR stand-in, which gets no text: on every call).
"""

from __future__ import annotations

import json
import os
import signal
import time
import zlib
from typing import Iterator, Sequence

import numpy as np

from contracts.payload import Turn
from contracts.settings import Settings
from workers.animation.base import AnimationBackend, RenderRequest, RenderResult
from workers.animation.base import registry as animation_registry
from workers.animation.encoder import EncoderOptions
from workers.asr.base import SAMPLE_RATE, ASRBackend, Transcription
from workers.asr.base import registry as asr_registry
from workers.llm.base import GenerationOptions, LLMBackend, LLMCapabilities
from workers.llm.base import registry as llm_registry
from workers.tts.base import Speech, Timing, TTSBackend, TTSCapabilities, VoiceInfo
from workers.tts.base import registry as tts_registry

NAME = "standin"
TTS_RATE = 16_000
FRAME_SIDE = 64  # pixels: enough for a valid H.264 stream, cheap to encode
WORD_SECONDS = 0.18
TONE_HZ = 220.0

# The settings that put the stand-ins in every stage of a farm.
STANDIN_ENV = {
    "TALKFARM_BACKEND_MODULES": json.dumps([__name__]),
    "TALKFARM_ASR__BACKEND": NAME,
    "TALKFARM_LLM__BACKEND": NAME,
    "TALKFARM_TTS__BACKEND": NAME,
    "TALKFARM_TTS__VOICE": NAME,
    "TALKFARM_TTS__BACKEND_FOR_LANGUAGE": "{}",
    "TALKFARM_ANIMATION__BACKEND": NAME,
}


def act_on_knobs(stage: str, text: str | None) -> None:
    """Wait and crash as ``TALKFARM_STANDIN_DELAY`` and ``TALKFARM_STANDIN_POISON`` say for ``stage``."""
    delay = json.loads(os.environ.get("TALKFARM_STANDIN_DELAY", "{}")).get(stage)
    if delay:
        time.sleep(float(delay))
    poison = json.loads(os.environ.get("TALKFARM_STANDIN_POISON", "{}")).get(stage)
    if poison and (text is None or poison in text.lower()):
        os.kill(os.getpid(), signal.SIGKILL)


@asr_registry.register(NAME)
class StandinASR(ASRBackend):
    """Hears a question numbered after the audio's length."""

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription:
        act_on_knobs("asr", None)
        seconds = len(audio) / SAMPLE_RATE
        return Transcription(text=f"What is the story of number {len(audio) % 997}?", language=language or "en",
                             language_probability=1.0, speech_seconds=round(seconds, 3))


@llm_registry.register(NAME)
class StandinLLM(LLMBackend):
    """Answers in three sentences that quote the last question, a word at a time."""

    capabilities = LLMCapabilities(streaming=True)

    def _stream(self, messages: Sequence[Turn], options: GenerationOptions) -> Iterator[str]:
        question = next((turn.content for turn in reversed(messages) if turn.role == "user"), "nothing")
        act_on_knobs("llm", question)
        words = " ".join(question.split()[:8]).rstrip("?.!")
        reply = f"You asked: {words}. That is a fine question. Here is a short answer."
        for i, word in enumerate(reply.split(" ")):
            yield word if i == 0 else " " + word


@tts_registry.register(NAME)
class StandinTTS(TTSBackend):
    """A soft tone per word, with the words' timings."""

    capabilities = TTSCapabilities(languages=("en",))

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        act_on_knobs("tts", text)
        t = np.arange(int(WORD_SECONDS * TTS_RATE)) / TTS_RATE
        tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
        gap = np.zeros(TTS_RATE // 20, np.float32)
        pieces: list[np.ndarray] = []
        timings: list[Timing] = []
        at = 0.0
        for word in text.split() or [text]:
            pieces += [tone, gap]
            timings.append(Timing(at, at + WORD_SECONDS, word, "word"))
            at += WORD_SECONDS + len(gap) / TTS_RATE
        return Speech(np.concatenate(pieces), TTS_RATE, tuple(timings))

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        return [VoiceInfo(NAME, cls.name, ("en",), default=True)]


@animation_registry.register(NAME)
class StandinAnimator(AnimationBackend):
    """A small grey square, one shade per portrait, brighter while the speech is loud."""

    def _render(self, request: RenderRequest) -> RenderResult:
        act_on_knobs("animation", request.text)
        fps = self.settings.animation.fps
        hop = request.sample_rate / fps
        base = 64 + zlib.crc32(request.portrait) % 96
        encoder = EncoderOptions(preset="ultrafast", threads=1)
        with self.video_writer(request, FRAME_SIDE, FRAME_SIDE, encoder) as writer:
            frames = writer.frames_total
            for i in range(frames):
                chunk = request.audio[int(i * hop):int((i + 1) * hop)]
                loud = float(np.sqrt(np.mean(chunk ** 2))) if len(chunk) else 0.0
                shade = min(255, base + int(200 * loud))
                writer.write(np.full((FRAME_SIDE, FRAME_SIDE, 3), shade, np.uint8))
        return RenderResult(frames=frames, width=FRAME_SIDE, height=FRAME_SIDE, seconds=frames / fps)
