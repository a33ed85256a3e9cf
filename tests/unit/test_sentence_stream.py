"""Cutting a reply that arrives token by token into sentences, each as soon as it is complete; and the rule that
a fragment with nothing to say (an ellipsis, "?!", an emoji) is never a segment of its own."""

from __future__ import annotations

import pytest

from contracts.events import segment_summary
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
                     portrait_key="a" * 64 + ".png", text="hi", stream=True)
    seg = segment_payload(job, 2, "Second sentence.")
    assert seg.plan == ["tts", "animation"] and seg.segment == 2 and seg.segment_text == "Second sentence."
    assert seg.job_id == "j" and seg.stream
    assert segment_summary({"speech_key": "k", "seconds": 1.0}) == {"segment_speech_key": "k", "segment_seconds": 1.0}


class FakeFlags:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.checks = 0
        self.cancel_after = cancel_after

    def cancelled(self, job_id: str) -> bool:
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after


@pytest.fixture
def streamed(monkeypatch):
    import workers.llm.stream as stream

    published: list[JobPayload] = []
    fake = FakeFlags()
    monkeypatch.setattr(stream.CancelFlags, "from_settings", classmethod(lambda cls, settings: fake))
    monkeypatch.setattr(stream, "publish_stage", lambda payload, settings: published.append(payload))
    job = JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                     portrait_key="a" * 64 + ".png", text="hi", stream=True)
    return stream, job, published, fake


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
    stream, job, published, fake = streamed
    gen, _ = deltas("**Sure!** The Moon orbits Earth. It has no air. Its day lasts a month. And then it")
    outcome = stream.stream_reply(job, gen, settings=None, fallback="Sorry.")
    assert [p.segment_text for p in published] == [
        "**Sure!**", "The Moon orbits Earth.", "It has no air.", "Its day lasts a month."]
    assert [p.segment for p in published] == [0, 1, 2, 3]
    assert all(p.plan == ["tts", "animation"] for p in published)
    # Users read the reply as written; what is said is beside it.
    assert outcome.summary == {"reply": "**Sure!** The Moon orbits Earth. It has no air. Its day lasts a month.",
                               "spoken_reply": "Sure! The Moon orbits Earth. It has no air. Its day lasts a month.",
                               "segments": 4}
    assert outcome.segments == 4 and outcome.payload is None  # the runner records the count, then assembles


def test_stream_reply_stops_at_the_sentence_cap(streamed) -> None:
    stream, job, published, fake = streamed
    gen, closed = deltas("One. Two. Three. Four. Five. Six.")
    outcome = stream.stream_reply(job, gen, settings=None, fallback="Sorry.", max_sentences=2)
    assert [p.segment_text for p in published] == ["One.", "Two."]
    assert outcome.summary["segments"] == 2 and outcome.segments == 2 and closed == [True]


def test_stream_reply_with_nothing_speakable_says_the_fallback(streamed) -> None:
    stream, job, published, fake = streamed
    gen, _ = deltas("  ** ``` ")
    outcome = stream.stream_reply(job, gen, settings=None, fallback="Sorry, I have no answer.")
    assert [p.segment_text for p in published] == ["Sorry, I have no answer."]
    assert outcome.summary["segments"] == 1 and outcome.segments == 1


def test_stream_reply_never_publishes_a_pause(streamed) -> None:
    stream, job, published, fake = streamed
    gen, _ = deltas("Hello... How are you? \u2014 Fine! ... \U0001F600")
    outcome = stream.stream_reply(job, gen, settings=None, fallback="Sorry.")
    assert [p.segment_text for p in published] == ["Hello...", "How are you?", "\u2014 Fine!"]
    assert outcome.segments == 3 and outcome.summary["spoken_reply"] == "Hello. How are you? Fine!"


def test_stream_reply_stops_when_cancelled(streamed) -> None:
    stream, job, published, fake = streamed
    fake.cancel_after = 1
    gen, closed = deltas("One. Two. Three. Four.")
    outcome = stream.stream_reply(job, gen, settings=None, fallback="Sorry.")
    assert outcome.segments is None and outcome.payload is None  # nothing to record, nothing to assemble
    assert [p.segment_text for p in published] == ["One."]
    assert outcome.summary["cancelled"] is True and closed == [True]
