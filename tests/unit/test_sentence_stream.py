"""Cutting a reply that arrives token by token into sentences, each as soon as it is complete."""

from __future__ import annotations

import pytest

from workers.payload import JobPayload
from workers.streaming import SentenceStream, segment_payload, segment_summary

pytestmark = pytest.mark.unit


def pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_sentences_come_out_whole_and_in_order(size: int) -> None:
    text = "Hello there! The value of pi is 3.14 roughly. Dr. Smith agrees. Is that right? Yes."
    stream = SentenceStream("en")
    out: list[str] = []
    for piece in pieces(text, size):
        out += stream.feed(piece)
    out += stream.finish()
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


def test_segment_payload_goes_through_tts_and_animation() -> None:
    job = JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                     portrait_key="a" * 64 + ".png", text="hi", stream=True)
    seg = segment_payload(job, 2, "Second sentence.")
    assert seg.plan == ["tts", "animation"] and seg.segment == 2 and seg.segment_text == "Second sentence."
    assert seg.job_id == "j" and seg.stream
    assert segment_summary(speech_key="k", seconds=1.0) == {"segment_speech_key": "k", "segment_seconds": 1.0}


class FakeLedger:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.closed: list[int] = []
        self.checks = 0
        self.cancel_after = cancel_after

    def cancelled(self, job_id: str) -> bool:
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after

    def close(self, job_id: str, total: int) -> bool:
        self.closed.append(total)
        return True


@pytest.fixture
def streamed(monkeypatch):
    import workers.streaming as streaming

    published: list[JobPayload] = []
    assembled: list[JobPayload] = []
    fake = FakeLedger()
    monkeypatch.setattr(streaming, "ledger", lambda: fake)
    monkeypatch.setattr(streaming, "publish_stage", lambda payload, settings: published.append(payload))
    monkeypatch.setattr(streaming, "publish_assembly", lambda payload, settings: assembled.append(payload))
    job = JobPayload(job_id="j", session_id="s", mode="chat", plan=["llm", "tts", "animation"],
                     portrait_key="a" * 64 + ".png", text="hi", stream=True)
    return streaming, job, published, assembled, fake


def deltas(text: str):
    closed = []

    def gen():
        try:
            for i in range(0, len(text), 4):
                yield text[i:i + 4]
        finally:
            closed.append(True)
    return gen(), closed


def test_stream_reply_hands_on_each_sentence_then_closes(streamed) -> None:
    streaming, job, published, assembled, fake = streamed
    gen, _ = deltas("**Sure!** The Moon orbits Earth. It has no air. Its day lasts a month. And then it")
    then, summary = streaming.stream_reply(job, gen, settings=None, fallback="Sorry.")
    assert fake.closed == [] and assembled == []  # the count is recorded after the finished event
    then()
    assert [p.segment_text for p in published] == [
        "Sure!", "The Moon orbits Earth.", "It has no air.", "Its day lasts a month."]
    assert [p.segment for p in published] == [0, 1, 2, 3]
    assert all(p.plan == ["tts", "animation"] for p in published)
    assert summary == {"reply": "Sure! The Moon orbits Earth. It has no air. Its day lasts a month.", "segments": 4}
    assert fake.closed == [4] and len(assembled) == 1


def test_stream_reply_stops_at_the_sentence_cap(streamed) -> None:
    streaming, job, published, _, fake = streamed
    gen, closed = deltas("One. Two. Three. Four. Five. Six.")
    then, summary = streaming.stream_reply(job, gen, settings=None, fallback="Sorry.", max_sentences=2)
    then()
    assert [p.segment_text for p in published] == ["One.", "Two."]
    assert summary["segments"] == 2 and fake.closed == [2] and closed == [True]


def test_stream_reply_with_nothing_speakable_says_the_fallback(streamed) -> None:
    streaming, job, published, _, fake = streamed
    gen, _ = deltas("  ** ``` ")
    then, summary = streaming.stream_reply(job, gen, settings=None, fallback="Sorry, I have no answer.")
    then()
    assert [p.segment_text for p in published] == ["Sorry, I have no answer."]
    assert summary["segments"] == 1 and fake.closed == [1]


def test_stream_reply_stops_when_cancelled(streamed) -> None:
    streaming, job, published, assembled, fake = streamed
    fake.cancel_after = 1
    gen, closed = deltas("One. Two. Three. Four.")
    then, summary = streaming.stream_reply(job, gen, settings=None, fallback="Sorry.")
    assert then is None
    assert [p.segment_text for p in published] == ["One."]
    assert summary["cancelled"] is True and fake.closed == [] and assembled == [] and closed == [True]
