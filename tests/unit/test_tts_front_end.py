"""The TTS stage reads through the spoken-text front end: pauses become silence, each language goes to its
voice, a segment of nothing is a pause, the phrase cache keys on what is said, the offer names the front end."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from contracts.artifacts import ArtifactStore
from contracts.errors import PermanentError
from contracts.events import resolve_texts
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings
from contracts.text.spoken import to_spoken
from pipeline import runtime
from pipeline.stages import STAGES
from tests.unit.test_tts_pipeline import MemoryStore, ToneTTS, settings  # registers unit-tone, unit-aligned
from workers.tts import tasks, voices
from workers.tts.base import Speech, VoiceInfo, registry
from workers.tts.phrases import PhraseCache
from workers.tts.speaking import phrases

pytestmark = pytest.mark.unit


class BilingualTTS(ToneTTS):
    """One voice that speaks English and Mandarin, as a multilingual model does."""

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        return [VoiceInfo("both", cls.name, ("en", "zh"), default=True)]


registry.register("unit-bilingual")(BilingualTTS)


def gaps(speech: Speech, at_least: float = 0.1) -> list[float]:
    """The silences inside the speech (not its edges), in seconds, in order."""
    quiet = "".join("q" if q else "." for q in np.abs(speech.samples) < 1e-6).strip("q")
    return [round(len(run) / speech.sample_rate, 2) for run in quiet.split(".") if len(run) >= at_least * 22050]


class TestPausesAreSilence:
    def test_an_ellipsis_between_sentences_is_the_longer_pause(self) -> None:
        backend = ToneTTS(settings(sample_rate=22050, sentence_pause_seconds=0.25))
        speech = backend.synthesize("Hello... How are you? — Fine!")
        assert backend.seen == ["Hello,", "How are you?", "Fine!"]
        # 20 ms of each neighbour's own silence is kept by the trim: 0.04 s over the pause.
        assert gaps(speech) == pytest.approx([0.44, 0.29], abs=0.02)  # the ellipsis; the sentence pause

    def test_a_longer_sentence_pause_wins_over_a_short_written_one(self) -> None:
        backend = ToneTTS(settings(sample_rate=22050, sentence_pause_seconds=0.6))
        assert gaps(backend.synthesize("Hello. ... How are you?")) == pytest.approx([0.64], abs=0.02)
        assert gaps(backend.synthesize("Hello... how are you?")) == pytest.approx([0.44], abs=0.02)  # one sentence

    def test_a_pause_inside_a_sentence(self) -> None:
        backend = ToneTTS(settings(sample_rate=22050))
        speech = backend.synthesize("Wait... what? Fine — thanks.")
        assert backend.seen == ["Wait,", "what?", "Fine,", "thanks."]
        assert gaps(speech) == pytest.approx([0.44, 0.29, 0.29], abs=0.02)

    def test_emoji_and_markup_are_not_said(self) -> None:
        backend = ToneTTS(settings())
        backend.synthesize("**Sure!** Here are the steps 😀🎉")
        assert backend.seen == ["Sure!", "Here are the steps"]

    @pytest.mark.parametrize("text", ["...", "😀", "?!", "```\ncode\n```"])
    def test_nothing_to_say(self, text: str) -> None:
        backend = ToneTTS(settings())
        with pytest.raises(PermanentError) as caught:
            backend.synthesize(text)
        assert caught.value.code == "empty_text" and backend.seen == []

    def test_phrases_cut_at_sentence_ends_and_pauses(self) -> None:
        spoken = to_spoken("Hello... How are you? Wait — what?\n\nBye")
        assert phrases(spoken, 0.25) == [("Hello,", 0.4), ("How are you?", 0.25), ("Wait,", 0.25),
                                         ("what?", 0.5), ("Bye", 0.0)]


class TestPhraseCache:
    def test_keyed_by_what_is_said(self) -> None:
        store = MemoryStore()
        cache = PhraseCache(store, max_chars=80)  # type: ignore[arg-type]
        backend = ToneTTS(settings())
        backend.synthesize("Dr. Smith paid $5.", cache=cache)
        backend.synthesize("Doctor Smith paid five dollars.", cache=cache)
        assert backend.seen == ["Doctor Smith paid five dollars."] and store.hits == 1


@pytest.fixture
def task(monkeypatch: pytest.MonkeyPatch, tmp_path: Any):
    """Run the TTS task with fake backends; returns ``run(job fields, **tts settings) -> (outcome, backends)``,
    the texts the outcome names read into its summary (as the coordinator does)."""
    def run(fields: dict[str, Any], **tts: Any):
        s = settings(phrase_cache_ttl_seconds=0, **tts).model_copy(update={"data_dir": tmp_path})
        store = ArtifactStore(s.artifact_dir)
        fields = dict(fields)
        texts = JobTexts(store, JobTexts.write_context(store, JobContext.new(fields.pop("text"))))
        if "segment_text" in fields:
            fields["segment_text_key"] = texts.put(fields.pop("segment_text"))
        job = JobPayload(job_id="j", session_id="s", mode="speak", plan=["tts", "animation"],
                         portrait_key="b" * 64 + ".png", context_key=texts.context_key, **fields)
        for module in (tasks, runtime):
            monkeypatch.setattr(module, "get_settings", lambda: s)
        monkeypatch.setattr(tasks, "_catalog", None)
        monkeypatch.setattr(tasks, "_cache", None)
        runtime.unload_all()
        try:
            outcome = tasks._synthesize(job)
            outcome = dataclasses.replace(outcome, summary=resolve_texts(outcome.summary, texts.read))
            return outcome, {name: runtime.loaded(registry, name) for name in s.tts.backend_names()}
        finally:
            runtime.unload_all()
    return run


def payload(text: str, **fields: Any) -> dict[str, Any]:
    """A speak job's fields, its texts among them (the task fixture stores them as artifacts)."""
    return {"text": text, **fields}


class TestLanguages:
    def test_each_language_goes_to_a_voice_of_it(self, task) -> None:
        outcome, backends = task(payload("我喜欢iPhone和MacBook。Thank you!"),
                                 backend_for_language={"zh": "unit-aligned"})
        assert backends["unit-aligned"].seen == ["我喜欢", "和"]
        assert backends["unit-tone"].seen == ["iPhone", "MacBook.", "Thank you!"]
        assert outcome.summary["spoken_text"] == "我喜欢iPhone和MacBook. Thank you!"

    def test_a_voice_that_speaks_both_says_the_phrase_whole(self, task) -> None:
        outcome, backends = task(payload("我喜欢iPhone和MacBook。"), backend="unit-bilingual", voice="both")
        assert backends["unit-bilingual"].seen == ["我喜欢iPhone和MacBook."]

    def test_the_named_voice_keeps_its_language_and_the_rest_goes_to_theirs(self, task) -> None:
        _, backends = task(payload("Hello 你好", voice="mandarin"), backend_for_language={"zh": "unit-aligned"})
        assert backends["unit-aligned"].seen == ["你好"] and backends["unit-tone"].seen == ["Hello"]

    def test_a_text_in_a_language_no_voice_speaks_is_refused(self, task) -> None:
        with pytest.raises(PermanentError) as caught:
            task(payload("مرحبا بكم في بيتنا"))
        assert caught.value.code == "unsupported_language" and "en" in caught.value.message

    def test_a_short_run_of_another_script_goes_to_the_job_voice(self, task) -> None:
        _, backends = task(payload("The Greek word is λόγος, you know."))
        assert backends["unit-tone"].seen == ["The Greek word is λόγος, you know."]


class TestSegments:
    def test_a_segment_with_nothing_to_say_is_a_pause_not_a_failure(self, task) -> None:
        outcome, backends = task(payload("Hi.", segment=2, segment_text="... 😀", stream=True))
        assert backends["unit-tone"].seen == []
        fps = Settings().animation.fps
        assert outcome.payload.speech_seconds == pytest.approx(np.ceil(0.25 * fps) / fps, abs=0.01)

    def test_a_whole_text_with_nothing_to_say_still_fails(self, task) -> None:
        with pytest.raises(PermanentError) as caught:
            task(payload("😀 ..."))
        assert caught.value.code == "empty_text"


def test_the_offer_names_the_front_end(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = STAGES["tts"]
    offer = spec.offer(settings())
    assert offer.frontend == voices.FRONTEND_VERSION
    monkeypatch.setattr(voices, "FRONTEND_VERSION", "next")
    assert spec.offer(settings()).digest != offer.digest  # a new reading is not served from the video cache
