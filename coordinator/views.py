"""JSON shapes of jobs, their segments, sessions and avatars as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coordinator.store.models import AvatarRow, EventRow, JobRow, SessionRow, StageRunRow
from coordinator.urls import Urls


def _aware(at: datetime, like: datetime) -> datetime:
    return at.replace(tzinfo=like.tzinfo) if at.tzinfo is None else at


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((_aware(end, start) - _aware(start, end)).total_seconds(), 3)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def job_view(job: JobRow, stages: list[StageRunRow], urls: Urls) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "session_id": job.session_id,
        "mode": job.mode,
        "status": job.status,
        "cached": job.cached,
        "language": job.language or job.detected_language,
        "detected_language": job.detected_language,
        "detected_language_probability": job.detected_language_probability,
        "text": job.text,
        "spoken_text": job.spoken_text,
        "transcript": job.transcript,
        "reply": job.reply,
        "spoken_reply": job.spoken_reply,
        "speech_seconds": job.speech_seconds,
        "video_seconds": job.video_seconds,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "stages": [
            {
                "stage": run.stage,
                "status": run.status,
                "attempts": run.attempts,
                "seconds": run.seconds,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
                "error_code": run.error_code,
            }
            for run in stages
        ],
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "total_seconds": seconds_between(job.created_at, job.finished_at),
        "urls": urls.job_links(job.id, job.session_id),
        "video_url": urls.video(job.id) if job.status == "succeeded" else None,
    }


def segment_view(event: EventRow, urls: Urls) -> dict[str, Any]:
    index = event.data["segment"]
    return {"index": index, "seconds": event.data.get("seconds"), "text": event.data.get("text"),
            "url": urls.segment(event.job_id, index), "mp4_url": urls.segment(event.job_id, index, "mp4")}


def streaming_view(job: JobRow, segments: list[EventRow], streamed: bool, urls: Urls) -> dict[str, Any]:
    """What ``GET /v1/jobs/{id}`` adds for a streamed job: segments, playlist URL, time to first segment."""
    if not streamed:
        return {"stream": False}
    first = next((e for e in segments if e.data.get("segment") == 0), None)
    return {
        "stream": True,
        "stream_url": urls.playlist(job.id),
        "time_to_first_segment_seconds": seconds_between(job.created_at, first.at if first else None),
        "segments": [segment_view(e, urls) for e in sorted(segments, key=lambda e: e.data["segment"])],
    }


def turn_view(job: JobRow, urls: Urls) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "mode": job.mode,
        "status": job.status,
        "question": job.transcript or job.text,
        "reply": job.reply if job.mode == "chat" else job.text,
        "video_url": urls.video(job.id) if job.status == "succeeded" else None,
        "created_at": _iso(job.created_at),
    }


def session_view(row: SessionRow, urls: Urls) -> dict[str, Any]:
    return {
        "session_id": row.id,
        "created_at": _iso(row.created_at),
        "persona": {"system_prompt": row.system_prompt, "voice": row.voice, "avatar": row.avatar_id},
        "urls": {"session": urls.session(row.id), "avatar": urls.avatar(row.avatar_id) if row.avatar_id else None},
    }


def avatar_view(row: AvatarRow, urls: Urls) -> dict[str, Any]:
    return {
        "avatar_id": row.id,
        "created_at": _iso(row.created_at),
        "urls": {"avatar": urls.avatar(row.id), "portrait": urls.avatar_portrait(row.id)},
    }
