"""The LLM stage's half of sentence streaming: hand each sentence of the reply on as soon as it is written.

The peers render the whole reply, then play it. Here the LLM task cuts the reply
into sentences as the tokens arrive (``SentenceStream``) and publishes each as its
own TTS subtask (``pipeline.dispatch.segment_payload``), numbered, on the normal
queues, under the job and session IDs; TTS and animation render it as one segment
of the video (``workers.animation.segments``). When the reply is written, the
task's ``Outcome`` says how many segments there are, and the runner records the
count in the ledger, which decides when the job's segments can be assembled.
"""

from __future__ import annotations

from typing import Iterator

from contracts.payload import JobPayload
from contracts.settings import Settings
from contracts.text.sentences import split_sentences
from pipeline.cancel import CancelFlags
from pipeline.dispatch import publish_stage, segment_payload
from pipeline.runner import Outcome
from workers.llm.text import clean_reply, is_complete


class SentenceStream:
    """Cut text that arrives in pieces into sentences, each as soon as it is known to be complete.

    A sentence is complete once the next one has begun (a full stop alone may be "Dr." or "3.").
    """

    def __init__(self, language: str | None = None) -> None:
        self._language = language
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        sentences = split_sentences(self._buffer, self._language)
        if len(sentences) < 2:
            return []
        # Keep the unfinished last sentence as it was written, spacing included.
        last = sentences[-1]
        at = self._buffer.rfind(last)
        self._buffer = self._buffer[at:] if at >= 0 else last
        return sentences[:-1]

    def finish(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest, self._language) if rest.strip() else []


def stream_reply(job: JobPayload, deltas: Iterator[str], settings: Settings, fallback: str,
                 max_sentences: int = 8) -> Outcome:
    """The streamed LLM stage's work: hand each sentence of the reply on as soon as it is written.

    Each sentence is made speakable (``clean_reply``); an unfinished last sentence (the token
    budget ran out) is dropped when a finished one came before; a reply with nothing speakable
    becomes ``fallback``. Generation stops early when the job is cancelled.
    """
    sentences = SentenceStream(job.language or job.detected_language)
    flags = CancelFlags.from_settings(settings)
    spoken: list[str] = []

    def hand_on(batch: list[str], last: bool = False) -> bool:
        # Cleaning can reveal sentence ends that markup hid ("**Sure!** The..."), so split again.
        cleaned = [text for chunk in batch for text in split_sentences(clean_reply(chunk, max_sentences=max_sentences))]
        for n, text in enumerate(cleaned):
            if len(spoken) >= max_sentences:
                return False
            if last and n == len(cleaned) - 1 and spoken and not is_complete(text):
                continue
            if flags.cancelled(job.job_id):
                return False
            publish_stage(segment_payload(job, len(spoken), text), settings)
            spoken.append(text)
        return True

    going = True
    try:
        for delta in deltas:
            if not hand_on(sentences.feed(delta)):
                going = False
                break
    finally:
        close_stream = getattr(deltas, "close", None)
        if close_stream is not None:
            close_stream()  # asks the backend to stop generating
    if going:
        hand_on(sentences.finish(), last=True)
    if flags.cancelled(job.job_id):
        return Outcome(summary={"reply": " ".join(spoken), "segments": len(spoken), "cancelled": True})
    if not spoken:
        publish_stage(segment_payload(job, 0, fallback), settings)
        spoken.append(fallback)
    return Outcome(summary={"reply": " ".join(spoken), "segments": len(spoken)}, segments=len(spoken))
