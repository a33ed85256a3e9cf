"""The TTS stage's shared pipeline with fake backends: sentences, pauses, level, rate, timings, phrase cache,
language routing, several backends in one worker, and the voices API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contracts.artifacts import ArtifactStore
from contracts.catalog import StageOffer
from contracts.errors import PermanentError
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings, TTSSettings
from contracts.timings import timings_document
from contracts.voices import backend_for_language
from coordinator.api import jobs as jobs_api
from coordinator.api import voices as voices_api
from coordinator.errors import install_handlers
from pipeline import runtime
from pipeline.catalog import OfferPublisher
from pipeline.stages import STAGES
from workers.tts.base import Speech, Timing, TTSBackend, VoiceInfo, registry
from workers.tts.finish import estimate_word_timings, normalise_text
from workers.tts.loudness import db_to_amplitude, loudness_dbfs, normalise, speech_bounds
from workers.tts.phrases import PhraseCache, decode, encode
from workers.tts.voices import VoiceCatalog

pytestmark = pytest.mark.unit

RATE = 16_000


def tone(seconds: float, amplitude: float, rate: int = RATE, silence: float = 0.1) -> np.ndarray:
    """A tone with silence around it, as a backend returns speech with quiet edges."""
    t = np.arange(int(seconds * rate)) / rate
    body = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    pad = np.zeros(int(silence * rate))
    return np.concatenate([pad, body, pad]).astype(np.float32)


class ToneTTS(TTSBackend):
    """A tone per sentence: 0.05 s per character, at a level set per voice."""

    levels = {"loud": 0.9, "quiet": 0.02}

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.seen: list[str] = []

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        self.seen.append(text)
        return Speech(tone(0.05 * len(text), self.levels.get(voice or "loud", 0.5)), RATE)

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        return [VoiceInfo(name, cls.name, ("en",), default=name == "loud") for name in cls.levels]


class AlignedTTS(ToneTTS):
    """Also returns a model timing per character, as Piper's alignments do."""

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        speech = super()._synthesize(text, voice, language)
        step = 0.05
        timings = tuple(Timing(0.1 + i * step, 0.1 + (i + 1) * step, c, "phoneme") for i, c in enumerate(text))
        return Speech(speech.samples, RATE, timings, timings_from_model=True)

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        return [VoiceInfo("mandarin", cls.name, ("zh",), default=True), VoiceInfo("loud", cls.name, ("zh",))]


registry.register("unit-tone")(ToneTTS)
registry.register("unit-aligned")(AlignedTTS)


class MemoryStore:
    """What PhraseCache needs of Cache, in memory, with counts."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.hits = self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> bool:
        self.data[key] = dict(value)
        return True


class MemoryCatalog:
    """What the runtime and the coordinator need of the stage catalog, in memory."""

    def __init__(self) -> None:
        self.published: dict[str, StageOffer] = {}

    def publish(self, offer: StageOffer) -> None:
        self.published[offer.stage] = offer

    def offer(self, stage: str) -> StageOffer | None:
        return self.published.get(stage)


def settings(**tts: Any) -> Settings:
    return Settings(tts=TTSSettings(**{"backend": "unit-tone", "voice": "loud", "backend_for_language": {}, **tts}))


class TestSentencesAndAssembly:
    def test_one_call_per_sentence_joined_with_pauses(self) -> None:
        s = settings(sample_rate=22050, sentence_pause_seconds=0.3)
        backend = ToneTTS(s)
        speech = backend.synthesize("Hello there. How are you, Dr. Smith? Fine!")

        assert backend.seen == ["Hello there.", "How are you, Doctor Smith?", "Fine!"]
        assert speech.sample_rate == 22050
        # Three sentences, each trimmed to its tone (20 ms kept either side), two pauses, two edges.
        spoken = sum(0.05 * len(t) + 0.04 for t in backend.seen)
        assert speech.seconds == pytest.approx(spoken + 2 * 0.3 + 2 * 0.05, abs=0.08)
        quiet = np.abs(speech.samples) < 1e-6
        longest_gap = max(len(run) for run in "".join("q" if q else "." for q in quiet).split("."))
        assert longest_gap / 22050 == pytest.approx(0.3 + 0.04, abs=0.03)

    def test_every_voice_comes_out_at_the_same_level(self) -> None:
        s = settings()
        backend = ToneTTS(s)
        levels = [loudness_dbfs(backend.synthesize("Same words here.", voice=v).samples, s.tts.sample_rate)
                  for v in ("loud", "quiet")]
        assert levels == pytest.approx([s.tts.loudness_dbfs] * 2, abs=0.5)

    def test_peaks_are_limited(self) -> None:
        rate = 22050
        x = tone(1.0, 0.05, rate, silence=0)
        x[[5000, 11000, 17000]] = 0.9  # clicks far above the speech
        out = normalise(x, rate, target_dbfs=-14.0, peak_dbfs=-1.0)
        assert float(np.abs(out).max()) <= db_to_amplitude(-1.0) + 1e-6
        assert loudness_dbfs(out, rate) == pytest.approx(-14.0, abs=1.0)
        # Away from the clicks the gain is untouched: the limiter acts for a few milliseconds only.
        gain = out[2000:4000] / np.where(x[2000:4000] == 0, 1, x[2000:4000])
        assert np.ptp(gain[x[2000:4000] != 0]) < 1e-3

    def test_silence_stays_silent_and_is_not_speakable(self) -> None:
        assert speech_bounds(np.zeros(RATE, dtype=np.float32), RATE) == (0, 0)
        assert np.all(normalise(np.zeros(100, dtype=np.float32), RATE, -20, -1) == 0)

        class Silent(ToneTTS):
            def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
                return Speech(np.zeros(RATE, dtype=np.float32), RATE)

        with pytest.raises(PermanentError) as caught:
            Silent(settings()).synthesize("Hello.")
        assert caught.value.code == "empty_text"

    @pytest.mark.parametrize("text", ["", "   ", "... !!! ???", "\u3002\uff01"])
    def test_nothing_speakable(self, text: str) -> None:
        backend = ToneTTS(settings())
        with pytest.raises(PermanentError) as caught:
            backend.synthesize(text)
        assert caught.value.code == "empty_text"
        assert backend.seen == []

    def test_punctuation_only_sentences_are_skipped(self) -> None:
        backend = ToneTTS(settings())
        backend.synthesize("Hello. ... Goodbye.")
        assert backend.seen == ["Hello.", "Goodbye."]


class TestTimings:
    def test_estimated_words_cover_each_sentence_in_order(self) -> None:
        speech = ToneTTS(settings()).synthesize("Hello there. It costs 1,000 dollars!")
        # The words said, not the ones written: visemes follow the spoken form.
        assert [t.label for t in speech.timings] == ["Hello", "there", "It", "costs", "one", "thousand", "dollars"]
        assert all(t.kind == "word" for t in speech.timings) and not speech.timings_from_model
        starts = [t.start for t in speech.timings]
        assert starts == sorted(starts) and all(t.end > t.start for t in speech.timings)
        assert speech.timings[-1].end <= speech.seconds
        # The second sentence starts after the pause.
        assert speech.timings[2].start - speech.timings[1].end >= 0.24

    def test_chinese_characters_are_timed_one_by_one(self) -> None:
        timings = estimate_word_timings("你好，世界。", 0.0, 1.0)
        assert [t.label for t in timings] == ["你", "好", "世", "界"]
        assert timings[2].start - timings[1].end == pytest.approx(0.2, abs=0.01)  # the comma's pause

    def test_model_timings_are_shifted_with_the_audio(self) -> None:
        s = settings(backend="unit-aligned")
        speech = AlignedTTS(s).synthesize("Ab. Cd.")
        assert speech.timings_from_model
        assert [t.label for t in speech.timings] == ["A", "b", ".", "C", "d", "."]
        # The backend's 0.1 s of leading silence was trimmed to 20 ms, after the 50 ms edge.
        assert speech.timings[0].start == pytest.approx(0.05 + 0.02, abs=0.021)
        assert speech.timings[3].start > speech.timings[2].end + 0.2

    def test_document(self) -> None:
        speech = AlignedTTS(settings(backend="unit-aligned")).synthesize("Hi.")
        document = timings_document(speech.timings, speech.timings_from_model, speech.seconds)
        assert document is not None
        assert document["kind"] == "phoneme" and document["source"] == "model"
        assert [item["label"] for item in document["items"]] == ["H", "i", "."]
        assert set(document["items"][0]) == {"start", "end", "label"}
        assert timings_document((), False, 1.0) is None

    def test_payload_carries_the_timings_key(self) -> None:
        key = "a" * 64 + ".json"
        job = JobPayload(job_id="j", session_id="s", mode="speak", plan=["tts"], portrait_key="b" * 64 + ".png")
        assert job.with_outputs(timings_key=key).timings_key == key
        with pytest.raises(ValueError):
            job.with_outputs(timings_key="../etc/passwd")


class TestPhraseCache:
    def test_repeated_sentences_are_not_synthesised_again(self) -> None:
        s = settings()
        store = MemoryStore()
        cache = PhraseCache(store, max_chars=40)  # type: ignore[arg-type]
        backend = ToneTTS(s)
        first = backend.synthesize("Hello there. Nice to meet you.", cache=cache)
        second = backend.synthesize("Hello  there.  Nice to meet you.", cache=cache)

        assert backend.seen == ["Hello there.", "Nice to meet you."]
        assert (store.hits, store.misses) == (2, 2)
        assert np.allclose(first.samples, second.samples, atol=1 / 32767)
        assert [t.label for t in second.timings] == [t.label for t in first.timings]

    def test_key_has_voice_rate_and_backend(self) -> None:
        store = MemoryStore()
        cache = PhraseCache(store, max_chars=40)  # type: ignore[arg-type]
        ToneTTS(settings()).synthesize("Hello.", cache=cache)
        ToneTTS(settings()).synthesize("Hello.", voice="quiet", cache=cache)
        ToneTTS(settings(sample_rate=16000)).synthesize("Hello.", cache=cache)
        AlignedTTS(settings()).synthesize("Hello.", cache=cache)
        assert len(store.data) == 4 and store.hits == 0

    def test_long_sentences_are_not_cached(self) -> None:
        store = MemoryStore()
        backend = ToneTTS(settings())
        backend.synthesize("This sentence is rather long for a phrase. Short one.",
                           cache=PhraseCache(store, max_chars=20))  # type: ignore[arg-type]
        assert len(store.data) == 1

    def test_encoding_round_trip_and_bad_entries(self) -> None:
        speech = Speech(np.array([0.0, 0.5, -0.5], dtype=np.float32), RATE, (Timing(0, 0.1, "a", "word"),))
        back = decode(encode(speech))
        assert back is not None and back.sample_rate == RATE and back.timings == speech.timings
        assert np.allclose(back.samples, speech.samples, atol=1e-4)
        assert decode({"pcm16": "not base64!", "rate": 1}) is None

    def test_normalised_text(self) -> None:
        assert normalise_text("  Hello \n there  ") == "Hello there"
        assert normalise_text("cafe\u0301") == "caf\u00e9"


class TestRouting:
    def test_language_picks_the_backend(self) -> None:
        routes = {"zh": "unit-aligned"}
        assert backend_for_language(routes, "unit-tone", "zh-CN") == "unit-aligned"
        assert backend_for_language(routes, "unit-tone", "ZH") == "unit-aligned"
        assert backend_for_language(routes, "unit-tone", "en") == "unit-tone"
        assert backend_for_language(routes, "unit-tone", None) == "unit-tone"

    def test_voice_picks_the_backend(self) -> None:
        s = settings(backend_for_language={"zh": "unit-aligned"})
        catalog = VoiceCatalog(s)
        assert catalog.route("mandarin", None) == "unit-aligned"
        assert catalog.route("quiet", "zh") == "unit-tone"
        # Both backends have "loud": the language's backend wins.
        assert catalog.route("loud", "zh") == "unit-aligned"
        assert catalog.route("loud", "en") == "unit-tone"
        assert catalog.route(None, "zh-TW") == "unit-aligned"
        with pytest.raises(PermanentError) as caught:
            catalog.route("nobody", "en")
        assert caught.value.code == "unknown_voice" and "mandarin" in caught.value.message

    def test_only_the_default_backend_has_the_default_voice(self) -> None:
        voices = VoiceCatalog(settings(extra_backends=["unit-aligned"])).voices()
        assert [(v.name, v.backend) for v in voices if v.default] == [("loud", "unit-tone")]
        assert {v.backend for v in voices} == {"unit-tone", "unit-aligned"}

    def test_backend_names(self) -> None:
        s = settings(backend_for_language={"zh": "unit-aligned", "yue": "unit-aligned"}, extra_backends=["unit-tone"])
        assert s.tts.backend_names() == ["unit-tone", "unit-aligned"]
        assert Settings().asr.backend_names() == [Settings().asr.backend]


class TestRuntime:
    def test_several_backends_of_one_stage_in_one_worker(self, monkeypatch: pytest.MonkeyPatch) -> None:
        s = settings(backend_for_language={"zh": "unit-aligned"})
        s.auth.enabled = False  # the voices, not the door, are tested here (tests/e2e/test_access.py has the door)
        catalog = MemoryCatalog()
        monkeypatch.setattr(runtime, "get_settings", lambda: s)
        monkeypatch.setattr(runtime, "offers", lambda: OfferPublisher(catalog))  # type: ignore[arg-type]
        monkeypatch.setenv("TALKFARM_WORKER_STAGES", "tts")
        runtime.unload_all()
        try:
            runtime.warm_up()
            default, mandarin = runtime.loaded(registry), runtime.loaded(registry, "unit-aligned")
            assert isinstance(default, ToneTTS) and isinstance(mandarin, AlignedTTS)
            assert default.loaded and mandarin.loaded
            assert runtime.loaded(registry, "unit-tone") is default
        finally:
            runtime.unload_all()
        assert not default.loaded
        # The worker published what it serves: both backends with their versions, and the voices.
        offer = catalog.published["tts"]
        assert offer.backends == {"unit-tone": "1", "unit-aligned": "1"}
        assert {(v.name, v.backend) for v in offer.voices} >= {("mandarin", "unit-aligned"), ("loud", "unit-tone")}

    def test_the_offer_digest_follows_versions_and_shaping_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spec = STAGES["tts"]
        base = spec.offer(settings())
        assert spec.offer(settings()).digest == base.digest
        assert spec.offer(settings(sample_rate=16000)).digest != base.digest
        monkeypatch.setattr(ToneTTS, "version", "2")
        assert spec.offer(settings()).digest != base.digest


class TestVoicesApi:
    @pytest.fixture
    def client(self) -> TestClient:
        s = settings(backend_for_language={"zh": "unit-aligned"})
        s.auth.enabled = False  # the voices, not the door, are tested here (tests/e2e/test_access.py has the door)
        catalog = MemoryCatalog()
        catalog.publish(STAGES["tts"].offer(s))  # as a TTS worker does when it starts
        app = FastAPI()
        install_handlers(app)
        app.include_router(jobs_api.router)
        app.include_router(voices_api.router)
        app.state.talkfarm = SimpleNamespace(settings=s, catalog=catalog)
        return TestClient(app)

    def test_lists_voices_with_language_and_backend(self, client: TestClient) -> None:
        answer = client.get("/v1/voices")
        assert answer.status_code == 200
        body = answer.json()
        assert {"name": "mandarin", "backend": "unit-aligned", "languages": ["zh"], "default": False} in body["voices"]
        assert {"name": "loud", "backend": "unit-tone", "languages": ["en"], "default": True} in body["voices"]
        assert body["default_backend"] == "unit-tone" and body["backend_for_language"] == {"zh": "unit-aligned"}

    def test_unknown_voice_is_refused_at_submission(self, client: TestClient, portrait_bytes: bytes) -> None:
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Hello.", "voice": "nobody"},
                             files={"portrait": ("p.png", portrait_bytes, "image/png")})
        assert answer.status_code == 422
        assert answer.json()["code"] == "unknown_voice"
        assert "mandarin" in answer.json()["message"]


class TestTask:
    def test_speech_and_timings_artifacts(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
        import json

        from contracts.audio import read_wav
        from workers.tts import tasks

        s = settings(backend_for_language={"zh": "unit-aligned"}, phrase_cache_ttl_seconds=0)
        s = s.model_copy(update={"data_dir": tmp_path})
        for module in (tasks, runtime):
            monkeypatch.setattr(module, "get_settings", lambda: s)
        monkeypatch.setattr(tasks, "_catalog", None)
        monkeypatch.setattr(tasks, "_cache", None)
        runtime.unload_all()
        store = ArtifactStore(s.artifact_dir)
        context_key = JobTexts.write_context(store, JobContext.new("你好。再见。"))
        job = JobPayload(job_id="j", session_id="s", mode="speak", plan=["tts", "animation"],
                         portrait_key="b" * 64 + ".png", context_key=context_key, language="zh-CN")
        try:
            outcome = tasks._synthesize(job)
        finally:
            runtime.unload_all()
        output, summary = outcome.payload, outcome.summary
        assert output is not None

        assert summary["tts_backend"] == "unit-aligned"
        assert JobTexts(store, context_key).read(summary["texts"]["spoken_text"]) == "你好。再见。"
        samples, rate = read_wav(store.path(output.speech_key or ""))
        assert rate == s.tts.sample_rate and len(samples) / rate == pytest.approx(output.speech_seconds, abs=1e-3)
        document = json.loads(store.path(output.timings_key or "").read_text(encoding="utf-8"))
        assert document["kind"] == "phoneme" and [i["label"] for i in document["items"]] == list("你好。再见。")

    def test_unknown_voice_fails_the_job(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
        from workers.tts import tasks

        s = settings().model_copy(update={"data_dir": tmp_path})
        monkeypatch.setattr(tasks, "get_settings", lambda: s)
        monkeypatch.setattr(tasks, "_catalog", None)
        monkeypatch.setattr(tasks, "_cache", None)
        store = ArtifactStore(s.artifact_dir)
        job = JobPayload(job_id="j", session_id="s", mode="speak", plan=["tts"], portrait_key="b" * 64 + ".png",
                         context_key=JobTexts.write_context(store, JobContext.new("Hello.")), voice="nobody")
        with pytest.raises(PermanentError) as caught:
            tasks._synthesize(job)
        assert caught.value.code == "unknown_voice"
