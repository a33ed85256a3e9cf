"""JSON shapes of jobs and sessions as the API shows them."""

from __future__ import annotations

from typing import Any

from coordinator.store.models import JobRow, StageRunRow


def job_urls(base: str, job_id: str, session_id: str) -> dict[str, str]:
    return {
        "job": f"{base}/v1/jobs/{job_id}",
        "events": f"{base}/v1/jobs/{job_id}/events",
        "video": f"{base}/v1/jobs/{job_id}/video",
        "session": f"{base}/v1/sessions/{session_id}",
    }


def job_view(job: JobRow, stages: list[StageRunRow], base: str) -> dict[str, Any]:
    total = None
    if job.finished_at is not None and job.created_at is not None:
        created = job.created_at.replace(tzinfo=job.finished_at.tzinfo) if job.created_at.tzinfo is None \
            else job.created_at
        total = round((job.finished_at - created).total_seconds(), 3)
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
        "transcript": job.transcript,
        "reply": job.reply,
        "speech_seconds": job.speech_seconds,
        "video_seconds": job.video_seconds,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "stages": [
            {
                "stage": run.stage,
                "status": run.status,
                "attempts": run.attempts,
                "seconds": run.seconds,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "error_code": run.error_code,
            }
            for run in stages
        ],
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "total_seconds": total,
        "urls": job_urls(base, job.id, job.session_id),
        "video_url": f"{base}/v1/jobs/{job.id}/video" if job.status == "succeeded" else None,
    }


def turn_view(job: JobRow, base: str) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "mode": job.mode,
        "status": job.status,
        "question": job.transcript or job.text,
        "reply": job.reply if job.mode == "chat" else job.text,
        "video_url": f"{base}/v1/jobs/{job.id}/video" if job.status == "succeeded" else None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
    }
