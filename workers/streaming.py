"""Sentence streaming: a reply is cut into sentences and each becomes a segment of video.

The peers render the whole reply, then play it. Here the LLM task hands each
complete sentence on as soon as it is written: every sentence goes through TTS
and animation as its own subtasks, on the normal queues, under the job and
session IDs (``segment`` on the payload says which). ``speak`` requests are cut
the same way by the coordinator. Each rendered segment

* is remuxed to MPEG-TS for the HLS playlist and reported in a ``segment`` event
  (index, duration, artifact keys), and
* is recorded in the ``SegmentLedger``; whichever task completes the set (the
  last segment to land, or the LLM task when it learns the count) publishes the
  ``assemble`` task, which joins the segments into the job's final MP4 and
  reports ``completed``.

Segment speech is padded to whole video frames, so the segments' video and
audio stay in step and the assembled MP4 lasts exactly the sum of the segments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from celery import Task

from cache.video import VideoCache
from workers.artifacts import ArtifactStore
from workers.assembly import SegmentMedia, assemble, to_transport_stream
from workers.audio import decode_audio
from workers import celery_app
from workers.celery_app import app
from workers.dispatch import publish_stage, publish_task
from workers.errors import TransientError
from workers.events import JobEvent, publish_event
from workers.llm.text import clean_reply, is_complete, split_sentences
from workers.payload import JobPayload
from workers.segments import Segment, SegmentLedger
from workers.settings import Settings, get_settings
from workers.stage import HandOn, run_stage

ASSEMBLE_TASK = celery_app.ASSEMBLE_TASK
SPEECH_RATE = 24_000  # the rate the animation stage renders speech at


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


@lru_cache(maxsize=1)
def ledger() -> SegmentLedger:
    return SegmentLedger.from_settings(get_settings())


def segment_payload(job: JobPayload, index: int, text: str) -> JobPayload:
    """The TTS payload of sentence ``index``: it goes on through TTS and animation."""
    return job.model_copy(update={"plan": ["tts", "animation"], "segment": index, "segment_text": text})


def publish_segments(job: JobPayload, sentences: Iterable[str], settings: Settings, start: int = 0) -> int:
    """Publish one TTS subtask per sentence, numbered from ``start``; returns the next index."""
    index = start
    for sentence in sentences:
        publish_stage(segment_payload(job, index, sentence), settings)
        index += 1
    return index


def close(job: JobPayload, total: int, settings: Settings) -> None:
    """The job will have ``total`` segments; assemble now if they have all landed already."""
    if ledger().close(job.job_id, total):
        publish_assembly(job, settings)


def finish_segment(job: JobPayload, video_key: str, speech_key: str, seconds: float,
                   store: ArtifactStore, settings: Settings) -> tuple[HandOn, dict[str, Any]]:
    """The end of a segment's animation work: its MPEG-TS copy, then (after ``finished``) its landing."""
    assert job.segment is not None
    with store.scratch_dir() as scratch:
        ts_path = Path(scratch) / "segment.ts"
        to_transport_stream(store.path(video_key), ts_path)
        ts = store.put_file(ts_path, "ts")
    segment = Segment(index=job.segment, video_key=video_key, speech_key=speech_key, seconds=round(seconds, 3),
                      text=job.segment_text or "")
    summary = segment_summary(video_key=video_key, ts_key=ts.key, seconds=segment.seconds)
    return (lambda: land(job, segment, ts.key, settings)), summary


def land(job: JobPayload, segment: Segment, ts_key: str, settings: Settings) -> None:
    """Report a rendered segment; assemble if it was the last one."""
    assert job.segment is not None
    publish_event(JobEvent(job_id=job.job_id, session_id=job.session_id, stage="animation", kind="segment",
                           seconds=segment.seconds,
                           data={"segment": segment.index, "seconds": segment.seconds, "text": segment.text,
                                 "video_key": segment.video_key, "ts_key": ts_key}), settings)
    if ledger().land(job.job_id, segment):
        publish_assembly(job, settings)


def stream_reply(job: JobPayload, deltas: Iterator[str], settings: Settings, fallback: str,
                 max_sentences: int = 8) -> tuple[HandOn | None, dict[str, Any]]:
    """The streamed LLM stage's work: hand each sentence of the reply on as soon as it is written.

    Each sentence is made speakable (``clean_reply``); an unfinished last sentence (the token
    budget ran out) is dropped when a finished one came before; a reply with nothing speakable
    becomes ``fallback``. Generation stops early when the job is cancelled.
    """
    sentences = SentenceStream(job.language or job.detected_language)
    spoken: list[str] = []

    def hand_on(batch: list[str], last: bool = False) -> bool:
        # Cleaning can reveal sentence ends that markup hid ("**Sure!** The..."), so split again.
        cleaned = [text for chunk in batch for text in split_sentences(clean_reply(chunk, max_sentences=max_sentences))]
        for n, text in enumerate(cleaned):
            if len(spoken) >= max_sentences:
                return False
            if last and n == len(cleaned) - 1 and spoken and not is_complete(text):
                continue
            if ledger().cancelled(job.job_id):
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
    if ledger().cancelled(job.job_id):
        return None, {"reply": " ".join(spoken), "segments": len(spoken), "cancelled": True}
    if not spoken:
        publish_stage(segment_payload(job, 0, fallback), settings)
        spoken.append(fallback)
    total = len(spoken)
    return (lambda: close(job, total, settings)), {"reply": " ".join(spoken), "segments": total}


def publish_assembly(job: JobPayload, settings: Settings) -> None:
    final = job.model_copy(update={"plan": ["animation"], "segment": None, "segment_text": None})
    publish_task(ASSEMBLE_TASK, final, "animation", "assemble", settings)


def segment_summary(**values: Any) -> dict[str, Any]:
    """Event data of a segment's stage: never the job-level keys (``speech_key``, ``video_key``)."""
    return {f"segment_{k}": v for k, v in values.items()}


@lru_cache(maxsize=1)
def _video_cache() -> VideoCache:
    return VideoCache.from_settings(get_settings())


def _assemble(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    settings = get_settings()
    store = ArtifactStore(settings.artifact_dir)
    segments = ledger().segments(job.job_id)
    total = ledger().total(job.job_id)
    if not segments or total is None or len(segments) < total:
        raise TransientError(f"{len(segments)} of {total} segments have landed", code="segments_missing")
    with store.scratch_dir() as scratch:
        output = Path(scratch) / "final.mp4"
        media = [SegmentMedia(video=store.path(s.video_key),
                              speech=decode_audio(store.path(s.speech_key), SPEECH_RATE),
                              sample_rate=SPEECH_RATE) for s in segments]
        seconds = assemble(media, output)
        video = store.put_file(output, "mp4")
    reply = " ".join(s.text for s in segments)
    summary = {"video_key": video.key, "video_seconds": round(seconds, 3), "speech_seconds": round(seconds, 3),
               "segments": len(segments),
               "transcript": job.transcript, "reply": reply if job.mode == "chat" else None}
    if job.cache_key:
        _video_cache().put(job.cache_key, store.read_bytes(video.key), summary)
    return job.with_outputs(video_key=video.key), summary


@app.task(name=ASSEMBLE_TASK, bind=True)
def assemble_segments(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "assemble", payload, _assemble, limits="animation")
