"""Cutting a reply that arrives token by token into sentences, each as soon as it is complete; and the rule that
a fragment with nothing to say (an ellipsis, "?!", an emoji) is never a segment of its own."""

from __future__ import annotations

import pytest

from contracts.artifacts import ArtifactStore
from contracts.events import segment_summary
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload
from contracts.text.spoken import SentenceStream, speech_sentences
from pipeline.dispatch import segment_payload

pytestmark = pytest.mark.unit


def cut_in_pieces(text: str, size: int) -> tuple[list[str], SentenceStream]:
    """The sentences of ``text`` fed in pieces of ``size`` characters, and the stream."""
    stream = SentenceStream("en")
    out: list[str] = []
    for i in range(0, len(text), size):
        out += stream.feed(text[i:i + size])
    return out + stream.finish(), stream


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_sentences_come_out_whole_and_in_order(size: int) -> None:
    out, _ = cut_in_pieces("Hello there! The value of pi is 3.14 roughly. Dr. Smith agrees. Is that right? Yes.", size)
    assert out == ["Hello there!", "The value of pi is 3.14 roughly.", "Dr. Smith agrees.", "Is that right?", "Yes."]


def test_a_sentence_is_released_when_the_next_one_starts() -> None:
    stream = SentenceStream("en")
    assert stream.feed("It is 3.") == []  # may be a decimal
    assert stream.feed("5 degrees outside.") == []
    assert stream.feed(" Take") == ["It is 3.5 degrees outside."]
    assert stream.finish() == ["Take"]
    assert stream.finish() == []


def test_chinese_sentences() -> None:
    stream = SentenceStream("zh")
    out = stream.feed("你好！今天天气很好。") + stream.feed("我们") + stream.finish()
    assert out == ["你好！", "今天天气很好。", "我们"]


class TestNothingToSayIsNeverASegment:
    @pytest.mark.parametrize(("text", "segments"), [
        ("Hello... How are you? \u2014 Fine!", ["Hello...", "How are you?", "\u2014 Fine!"]),
        ("Hello. ... How are you?", ["Hello.", "... How are you?"]),
        ("Great?! ?! Yes.", ["Great?!", "?! Yes."]),
        ("How are you? \U0001F600\U0001F389", ["How are you? \U0001F600\U0001F389"]),
        ("\U0001F600 Hi there. Bye.", ["\U0001F600 Hi there.", "Bye."]),
        ("... ?! Well", ["... ?! Well"]),
        ("Look:\n\n```\nx = 1\n```\n\nDone.", ["Look:", "```\nx = 1\n```\n\nDone."]),
        ("你好……我很好。\U0001F600", ["你好……我很好。\U0001F600"]),
    ])
    def test_a_fragment_goes_with_a_neighbour_as_written(self, text: str, segments: list[str]) -> None:
        assert speech_sentences(text, "en") == segments
        # Nothing written is dropped.
        assert " ".join(" ".join(segments).split()) == " ".join(text.split())

    @pytest.mark.parametrize("text", ["...", "?!", "\U0001F600", "```\ncode\n```", "  ", "\u2014"])
    def test_nothing_to_say_gives_no_segment(self, text: str) -> None:
        assert speech_sentences(text) == []

    @pytest.mark.parametrize("size", [1, 4, 1000])
    def test_in_a_stream_a_fragment_goes_with_the_next_sentence(self, size: int) -> None:
        text = "Hello. ... How are you? \U0001F600 Fine! \U0001F389\U0001F389"
        out, stream = cut_in_pieces(text, size)
        assert out == ["Hello.", "... How are you?", "\U0001F600 Fine!"]
        assert stream.tail.strip() == "\U0001F389\U0001F389"  # after the last one: written, never said
        assert "".join(stream.written) + stream.tail == text


def test_segment_payload_goes_through_tts_and_animation() -> None:
    job = JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                     portrait_key="a" * 64 + ".png", stream=True)
    seg = segment_payload(job, 2, "e" * 64 + ".json")
    assert seg.plan == ["tts", "animation"] and seg.segment == 2 and seg.segment_text_key == "e" * 64 + ".json"
    assert seg.job_id == "j" and seg.stream
    assert segment_summary({"speech_key": "k", "seconds": 1.0}) == {"segment_speech_key": "k", "segment_seconds": 1.0}


class FakeFlags:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.checks = 0
        self.cancel_after = cancel_after

    def cancelled(self, job_id: str) -> bool:
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after


class Streamed:
    """The stream module with its publishing recorded: each published sentence read back from its artifact."""

    def __init__(self, stream, job: JobPayload, texts: JobTexts, fake: FakeFlags) -> None:
        self.stream, self.job, self.texts, self.fake = stream, job, texts, fake
        self.published: list[JobPayload] = []

    def reply(self, deltas, fallback: str = "Sorry.", **options):
        return self.stream.stream_reply(self.job, deltas, None, fallback, self.texts, **options)

    @property
    def sentences(self) -> list[str | None]:
        return [self.texts.read(p.segment_text_key) for p in self.published]


@pytest.fixture
def streamed(monkeypatch, tmp_path) -> Streamed:
    import workers.llm.stream as stream

    store = ArtifactStore(tmp_path)
    context = JobContext.new("hi")
    texts = JobTexts(store, JobTexts.write_context(store, context))
    job = JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                     portrait_key="a" * 64 + ".png", context_key=texts.context_key, stream=True)
    recorder = Streamed(stream, job, texts, FakeFlags())
    monkeypatch.setattr(stream.CancelFlags, "from_settings", classmethod(lambda cls, settings: recorder.fake))
    monkeypatch.setattr(stream, "publish_stage", lambda payload, settings: recorder.published.append(payload))
    return recorder


def deltas(text: str):
    closed = []

    def gen():
        try:
            for i in range(0, len(text), 4):
                yield text[i:i + 4]
        finally:
            closed.append(True)
    return gen(), closed


def test_stream_reply_hands_on_each_sentence_and_reports_the_count(streamed) -> None:
    gen, _ = deltas("**Sure!** The Moon orbits Earth. It has no air. Its day lasts a month. And then it")
    reply = streamed.reply(gen)
    assert streamed.sentences == ["**Sure!**", "The Moon orbits Earth.", "It has no air.", "Its day lasts a month."]
    assert [p.segment for p in streamed.published] == [0, 1, 2, 3]
    assert all(p.plan == ["tts", "animation"] for p in streamed.published)
    # Users read the reply as written; what is said is beside it.
    assert reply.text == "**Sure!** The Moon orbits Earth. It has no air. Its day lasts a month."
    assert reply.spoken == "Sure! The Moon orbits Earth. It has no air. Its day lasts a month."
    assert reply.segments == 4 and not reply.cancelled


def test_stream_reply_stops_at_the_sentence_cap(streamed) -> None:
    gen, closed = deltas("One. Two. Three. Four. Five. Six.")
    reply = streamed.reply(gen, max_sentences=2)
    assert streamed.sentences == ["One.", "Two."]
    assert reply.segments == 2 and closed == [True]


def test_stream_reply_with_nothing_speakable_says_the_fallback(streamed) -> None:
    gen, _ = deltas("  ** ``` ")
    reply = streamed.reply(gen, fallback="Sorry, I have no answer.")
    assert streamed.sentences == ["Sorry, I have no answer."]
    assert reply.segments == 1 and reply.text == "Sorry, I have no answer."


def test_stream_reply_never_publishes_a_pause(streamed) -> None:
    gen, _ = deltas("Hello... How are you? \u2014 Fine! ... \U0001F600")
    reply = streamed.reply(gen)
    assert streamed.sentences == ["Hello...", "How are you?", "\u2014 Fine!"]
    assert reply.segments == 3 and reply.spoken == "Hello. How are you? Fine!"


def test_stream_reply_stops_when_cancelled(streamed) -> None:
    streamed.fake.cancel_after = 1
    gen, closed = deltas("One. Two. Three. Four.")
    reply = streamed.reply(gen)
    assert streamed.sentences == ["One."]
    assert reply.cancelled and reply.segments == 1 and closed == [True]
