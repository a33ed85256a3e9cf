"""From a job to a reply: prompt trimming to a token budget, personas, the FAQ key, the reply check."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Sequence

import pytest

from cache.faq import faq_key, normalise_question
from contracts.artifacts import ArtifactStore
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload, Turn
from contracts.settings import LLMSettings, Settings
from tests.fakes.backends import FakeLLM
from workers.llm import conversation, tasks
from workers.llm.conversation import Prompt, finish_reply, prepare_prompt
from workers.llm.text import build_messages, fit_to_budget

pytestmark = pytest.mark.unit

KEY = "a" * 64 + ".png"


def words(messages: Sequence[Turn]) -> int:
    """A token counter for tests: one token a word."""
    return sum(len(turn.content.split()) for turn in messages)


def exchange(n: int) -> list[Turn]:
    return [Turn(role="user", content=f"question {n} " + "x " * 8),
            Turn(role="assistant", content=f"answer {n} " + "y " * 8)]


def prompt_for(settings: Settings, text: str = "Hello there", history: list[Turn] | None = None,
               system_prompt: str | None = None) -> Prompt:
    """The prompt of a question asked with this history and persona (``prepare_prompt``)."""
    context = JobContext.new(text, history or [], system_prompt)
    return prepare_prompt(text, context, FakeLLM(settings), settings)


def job(settings: Settings, text: str = "Hello there", history: list[Turn] | None = None) -> JobPayload:
    """A chat job whose context is stored in ``settings``' artifact folder."""
    context_key = JobTexts.write_context(ArtifactStore(settings.artifact_dir), JobContext.new(text, history or []))
    return JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                      portrait_key=KEY, context_key=context_key)


def read(settings: Settings, key: str | None) -> str | None:
    return JobTexts(ArtifactStore(settings.artifact_dir), None).read(key)


class FakeFaq:
    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self.hits = self.misses = 0

    def get(self, key: str) -> str | None:
        found = self.entries.get(key)
        self.hits, self.misses = self.hits + (found is not None), self.misses + (found is None)
        return found

    def put(self, key: str, reply: str) -> bool:
        self.entries[key] = reply
        return True


@pytest.fixture
def faq(monkeypatch: pytest.MonkeyPatch) -> FakeFaq:
    fake = FakeFaq()
    monkeypatch.setattr(conversation, "faq_cache", lambda: fake)
    return fake


class TestFitToBudget:
    def test_oldest_exchanges_go_first_and_the_system_prompt_stays(self) -> None:
        history = exchange(1) + exchange(2) + exchange(3)
        messages = build_messages("You are Max.", history, "And now?", max_turns=10)
        assert words(messages) == 3 + 60 + 2
        kept = fit_to_budget(messages, 30, words)
        assert [t.content.split()[1] for t in kept[1:-1]] == ["3", "3"]  # only the newest exchange
        assert kept[0] == Turn(role="system", content="You are Max.") and kept[-1].content == "And now?"
        assert fit_to_budget(messages, 1000, words) == messages

    def test_the_question_and_persona_are_kept_even_over_budget(self) -> None:
        messages = build_messages("You are Max.", exchange(1), "a b c d e f", max_turns=10)
        assert fit_to_budget(messages, 2, words) == [messages[0], messages[-1]]
        no_system = build_messages("", exchange(1), "Hi", max_turns=10)
        assert fit_to_budget(no_system, 1, words) == [Turn(role="user", content="Hi")]

    def test_never_starts_with_an_orphaned_answer(self) -> None:
        messages = [Turn(role="system", content="S"), Turn(role="user", content="u1 " * 10),
                    Turn(role="assistant", content="a1"), Turn(role="user", content="u2"),
                    Turn(role="assistant", content="a2"), Turn(role="user", content="now")]
        kept = fit_to_budget(messages, 6, words)
        assert [t.content for t in kept] == ["S", "u2", "a2", "now"]


class TestFaqKey:
    def test_normalisation(self) -> None:
        same = ["What's the time?", "  what's   the TIME ", "Whats the time", "WHAT\u2019S THE TIME!!"]
        assert {normalise_question(q) for q in same} == {"whats the time"}
        assert normalise_question("Ｈｅｌｌｏ, World") == "hello world"  # full-width forms

    def test_key_depends_on_question_persona_model_and_options(self) -> None:
        base = faq_key("What's the time?", "You are Max.", "transformers:1:/m", {"temperature": 0})
        assert faq_key("whats the time", " You are Max. ", "transformers:1:/m", {"temperature": 0}) == base
        assert faq_key("What's the date?", "You are Max.", "transformers:1:/m", {"temperature": 0}) != base
        assert faq_key("What's the time?", "You are Ann.", "transformers:1:/m", {"temperature": 0}) != base
        assert faq_key("What's the time?", "You are Max.", "openai:1:http://x:m", {"temperature": 0}) != base
        assert faq_key("What's the time?", "You are Max.", "transformers:1:/m", {"temperature": 0.5}) != base


class TestPreparePrompt:
    def test_the_sessions_persona_replaces_the_configured_prompt(self) -> None:
        settings = Settings()
        prompt = prompt_for(settings, system_prompt="You are Captain Max.")
        assert prompt.messages[0] == Turn(role="system", content="You are Captain Max.")
        default = prompt_for(settings)
        assert default.messages[0].content == settings.llm.system_prompt
        no_prompt = prompt_for(settings, system_prompt="")
        assert no_prompt.messages == [Turn(role="user", content="Hello there")]

    def test_history_is_trimmed_to_the_token_budget(self) -> None:
        settings = Settings(llm=LLMSettings(max_prompt_tokens=60, history_turns=20))
        history = [turn for n in range(10) for turn in exchange(n)]
        prompt = prompt_for(settings, history=history)
        assert FakeLLM(settings).count_tokens(prompt.messages) <= 60
        assert prompt.messages[1].content.startswith("question ") and prompt.messages[-2].content.startswith("answer 9")
        assert len(prompt.messages) < 2 + 2 * 10

    def test_faq_only_for_first_turns_and_deterministic_sampling(self) -> None:
        llm_settings = Settings()
        assert prompt_for(llm_settings).faq_key is not None
        assert prompt_for(llm_settings, history=exchange(1)).faq_key is None
        assert prompt_for(Settings(llm=LLMSettings(temperature=0.7))).faq_key is None
        assert prompt_for(Settings(llm=LLMSettings(temperature=0.7, faq_cache="on"))).faq_key is not None
        assert prompt_for(Settings(llm=LLMSettings(faq_cache="off"))).faq_key is None

    def test_persona_changes_the_faq_key(self) -> None:
        settings = Settings()
        first = prompt_for(settings, system_prompt="You are Max.").faq_key
        second = prompt_for(settings, system_prompt="You are Ann.").faq_key
        assert first != second


class TestReplyCheck:
    @pytest.mark.parametrize("raw", ["", "   \n\t", "**  **", "```\ncode only\n```", "<|im_end|>", "\U0001F600 \u2728",
                                     "- \n- \n---"])
    def test_nothing_speakable_gives_the_fallback(self, raw: str, faq: FakeFaq) -> None:
        settings = Settings(llm=LLMSettings(fallback_reply="Let me think about that."))
        assert finish_reply(raw, Prompt([], prompt_for(settings).options, "k"), settings) == "Let me think about that."
        assert faq.entries == {}  # a fallback is never cached as the answer

    def test_a_reply_with_something_to_say_is_kept_as_written_and_cached(self, faq: FakeFaq) -> None:
        settings = Settings()
        prompt = Prompt([], prompt_for(settings).options, "k")
        assert finish_reply("Assistant: **Paris** is the capital. \U0001F600", prompt, settings) == (
            "**Paris** is the capital. \U0001F600")
        assert faq.entries == {"k": "**Paris** is the capital. \U0001F600"}


def test_the_task_answers_first_turns_from_the_faq_cache(monkeypatch: pytest.MonkeyPatch, faq: FakeFaq,
                                                         tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    llm = FakeLLM(settings, reply="The capital of France is *Paris*.")
    monkeypatch.setattr(tasks, "loaded", lambda registry: llm)
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    first = tasks._reply(job(settings, "What is the capital of France?"))
    assert first.payload is not None and read(settings, first.payload.reply_key) == "The capital of France is *Paris*."
    assert first.summary["texts"]["reply"] == first.payload.reply_key
    assert read(settings, first.summary["texts"]["spoken_reply"]) == "The capital of France is Paris."
    assert first.summary["faq_cache"] is False
    again = tasks._reply(job(settings, "what is the capital of france"))
    assert again.payload is not None and read(settings, again.payload.reply_key) == "The capital of France is *Paris*."
    assert again.summary["faq_cache"] is True
    assert llm.knobs.calls == 1 and (faq.hits, faq.misses) == (1, 1)
    later = tasks._reply(job(settings, "What is the capital of France?", history=exchange(1)))
    assert later.summary["faq_cache"] is False and llm.knobs.calls == 2  # not a first turn: asked again


def test_the_task_speaks_the_fallback_for_an_empty_reply(monkeypatch: pytest.MonkeyPatch, faq: FakeFaq,
                                                         tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr(tasks, "loaded", lambda registry: FakeLLM(settings, reply="## \n***"))
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    answered = tasks._reply(job(settings, "Say nothing")).payload
    assert answered is not None and read(settings, answered.reply_key) == settings.llm.fallback_reply


def test_a_streamed_reply_names_its_texts_and_a_cancelled_one_records_no_count(
        monkeypatch: pytest.MonkeyPatch, faq: FakeFaq, tmp_path) -> None:
    import workers.llm.stream as stream

    settings = Settings(data_dir=tmp_path)
    published: list[JobPayload] = []
    cancelled = [False]
    monkeypatch.setattr(stream, "publish_stage", lambda payload, settings: published.append(payload))
    monkeypatch.setattr(stream.CancelFlags, "from_settings",
                        classmethod(lambda cls, settings: SimpleNamespace(cancelled=lambda job_id: cancelled[0])))
    monkeypatch.setattr(tasks, "loaded", lambda registry: FakeLLM(settings, reply="One thing. Another thing."))
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    streamed = job(settings, "Tell me two things.").model_copy(update={"stream": True})
    outcome = tasks._reply(streamed)
    assert outcome.segments == 2 and outcome.payload is None  # the runner records the count, then assembles
    assert [read(settings, p.segment_text_key) for p in published] == ["One thing.", "Another thing."]
    assert read(settings, outcome.summary["texts"]["reply"]) == "One thing. Another thing."
    assert "thing" not in json.dumps(outcome.summary) and outcome.summary["segments"] == 2
    cancelled[0] = True
    stopped = tasks._reply(streamed)
    assert stopped.segments is None and stopped.summary["cancelled"] is True  # nothing to record or assemble
    assert len(published) == 2
