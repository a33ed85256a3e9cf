"""The LLM stage's half of sentence streaming: hand each sentence of the reply on as soon as it is written.

The peers render the whole reply, then play it. Here the LLM task cuts the reply
into sentences as the tokens arrive (``workers.llm.text.ReplySentences``: each
says something, so an ellipsis, a "?!" or an emoji is never a segment of its
own) and publishes each as its own TTS subtask
(``pipeline.dispatch.segment_payload``; the sentence itself is a text artifact,
``contracts.job_texts``), numbered, on the normal queues, under
the job and session IDs; TTS and animation render it as one segment of the
video (``workers.animation.segments``). When the reply is written, the task's
``Outcome`` says how many segments there are, and the runner records the count
in the ledger, which decides when the job's segments can be assembled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings
from contracts.text.spoken import to_spoken
from pipeline.cancel import CancelFlags
from pipeline.dispatch import publish_stage, segment_payload
from workers.llm.text import ReplySentences


@dataclass(frozen=True)
class StreamedReply:
    """What was handed on: the reply as written (its segments joined), what is said of it, how many segments."""

    text: str
    spoken: str
    segments: int
    cancelled: bool = False  # the job was cancelled: some sentences may never have been handed on


def stream_reply(job: JobPayload, deltas: Iterator[str], settings: Settings, fallback: str, texts: JobTexts,
                 max_sentences: int = 8) -> StreamedReply:
    """The streamed LLM stage's work: hand each sentence of the reply on as soon as it is written
    (stored with ``texts``, its key in the segment's payload).

    A reply with nothing to say becomes ``fallback``. Generation stops early when the job is
    cancelled or the sentence cap is reached.
    """
    reply = ReplySentences(job.language or job.detected_language, max_sentences)
    flags = CancelFlags.from_settings(settings)
    published = 0

    def hand_on(sentences: list[str]) -> bool:
        nonlocal published
        for sentence in sentences:
            if flags.cancelled(job.job_id):
                return False
            publish_stage(segment_payload(job, published, texts.put(sentence)), settings)
            published += 1
        return not reply.full

    going = True
    try:
        for delta in deltas:
            if not hand_on(reply.feed(delta)):
                going = False
                break
    finally:
        close_stream = getattr(deltas, "close", None)
        if close_stream is not None:
            close_stream()  # asks the backend to stop generating
    if going:
        hand_on(reply.finish())
    # A streamed reply is its segments as written (the assembly reports it so too), each said on its own.
    sentences = reply.sentences[:published]
    text, spoken = " ".join(sentences), " ".join(to_spoken(s, reply.language).text for s in sentences)
    if flags.cancelled(job.job_id):
        return StreamedReply(text, spoken, published, cancelled=True)
    if not published:
        publish_stage(segment_payload(job, 0, texts.put(fallback)), settings)
        published, text, spoken = 1, fallback, to_spoken(fallback, reply.language).text
    return StreamedReply(text, spoken, published)
