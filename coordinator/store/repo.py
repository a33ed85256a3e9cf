"""Reading and writing the job store. Synchronous: the API calls it through ``asyncio.to_thread``."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from coordinator.store.models import ArtifactRow, AvatarRow, EventRow, JobRow, SessionRow, StageRunRow
from pipeline.events import JobEvent

log = logging.getLogger(__name__)
TERMINAL = ("succeeded", "failed", "cancelled")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # --- sessions -------------------------------------------------------------
    def get_session(self, session_id: str) -> SessionRow | None:
        with self._sessions() as s:
            return s.get(SessionRow, session_id)

    def ensure_session(self, session_id: str) -> SessionRow:
        with self._sessions() as s, s.begin():
            row = s.get(SessionRow, session_id)
            if row is None:
                row = SessionRow(id=session_id)
                s.add(row)
            return row

    def create_session(self, session: SessionRow) -> SessionRow:
        """A new session, with its persona (system prompt, voice, avatar) if it has one."""
        with self._sessions() as s, s.begin():
            s.add(session)
        return session

    # --- avatars --------------------------------------------------------------
    def create_avatar(self, avatar: AvatarRow, portrait: ArtifactRow) -> AvatarRow:
        with self._sessions() as s, s.begin():
            if s.get(ArtifactRow, portrait.key) is None:
                s.add(portrait)
                s.flush()
            s.add(avatar)
        return avatar

    def get_avatar(self, avatar_id: str) -> AvatarRow | None:
        with self._sessions() as s:
            return s.get(AvatarRow, avatar_id)

    def session_jobs(self, session_id: str) -> list[JobRow]:
        with self._sessions() as s:
            return list(s.scalars(
                select(JobRow).where(JobRow.session_id == session_id).order_by(JobRow.created_at)
            ))

    def history(self, session_id: str, max_turns: int) -> list[dict[str, str]]:
        """The session's finished chat exchanges as user/assistant turns, oldest first."""
        turns: list[dict[str, str]] = []
        for job in self.session_jobs(session_id):
            question = job.transcript or job.text
            if job.mode == "chat" and job.status == "succeeded" and question and job.reply:
                turns += [{"role": "user", "content": question}, {"role": "assistant", "content": job.reply}]
        return turns[-2 * max_turns:] if max_turns > 0 else []

    # --- jobs -----------------------------------------------------------------
    def create_job(self, job: JobRow, plan: Sequence[str], artifacts: Sequence[ArtifactRow]) -> None:
        with self._sessions() as s, s.begin():
            if s.get(SessionRow, job.session_id) is None:
                s.add(SessionRow(id=job.session_id))
                s.flush()
            for artifact in artifacts:
                if s.get(ArtifactRow, artifact.key) is None:
                    s.add(artifact)
            s.add(job)
            s.flush()
            for position, stage in enumerate(plan):
                s.add(StageRunRow(job_id=job.id, stage=stage, position=position))

    def get_job(self, job_id: str) -> tuple[JobRow, list[StageRunRow]] | None:
        with self._sessions() as s:
            job = s.get(JobRow, job_id)
            if job is None:
                return None
            stages = list(s.scalars(
                select(StageRunRow).where(StageRunRow.job_id == job_id).order_by(StageRunRow.position)
            ))
            return job, stages

    def mark_failed(self, job_id: str, code: str, message: str) -> None:
        with self._sessions() as s, s.begin():
            job = s.get(JobRow, job_id)
            if job is not None and job.status not in TERMINAL:
                job.status, job.error_code, job.error_message = "failed", code, message
                job.finished_at = datetime.now(timezone.utc)

    def mark_cancelled(self, job_id: str) -> bool:
        """Cancel a job that has not ended; False when it had already ended."""
        with self._sessions() as s, s.begin():
            job = s.get(JobRow, job_id)
            if job is None or job.status in TERMINAL:
                return False
            now = datetime.now(timezone.utc)
            job.status, job.finished_at = "cancelled", now
            job.error_code, job.error_message = "cancelled", "cancelled by the client"
            pending = select(StageRunRow).where(StageRunRow.job_id == job_id,
                                                StageRunRow.status.in_(("pending", "running", "retrying")))
            for run in s.scalars(pending):
                run.status = "cancelled"
            s.add(EventRow(job_id=job_id, stage="job", kind="cancelled", at=now, data={}))
            return True

    def events_of_kind(self, job_id: str, kind: str) -> list[EventRow]:
        with self._sessions() as s:
            return list(s.scalars(
                select(EventRow).where(EventRow.job_id == job_id, EventRow.kind == kind).order_by(EventRow.id)
            ))

    def events_after(self, job_id: str, after_id: int) -> list[EventRow]:
        with self._sessions() as s:
            return list(s.scalars(
                select(EventRow).where(EventRow.job_id == job_id, EventRow.id > after_id).order_by(EventRow.id)
            ))

    def add_event(self, job_id: str, stage: str, kind: str, data: dict[str, Any]) -> None:
        with self._sessions() as s, s.begin():
            s.add(EventRow(job_id=job_id, stage=stage, kind=kind, data=data))

    def counts(self) -> dict[str, int]:
        """Row counts per table (used by operators and by tests that check nothing changed)."""
        with self._sessions() as s:
            return {
                model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
                for model in (SessionRow, JobRow, StageRunRow, ArtifactRow, EventRow, AvatarRow)
            }

    # --- events from the workers ----------------------------------------------
    def apply_event(self, ev: JobEvent) -> bool:
        """Persist one worker event; False when the job is unknown to this store."""
        at = datetime.fromtimestamp(ev.at, timezone.utc)
        with self._sessions() as s, s.begin():
            job = s.get(JobRow, ev.job_id)
            if job is None:
                return False
            run = s.scalar(select(StageRunRow).where(StageRunRow.job_id == ev.job_id,
                                                     StageRunRow.stage == ev.stage))
            s.add(EventRow(job_id=ev.job_id, stage=ev.stage, kind=ev.kind, at=at,
                           data={**ev.data, "seconds": ev.seconds}))
            if run is not None:
                _apply_to_stage(run, ev, at)
            _apply_to_job(s, job, ev, at)
        return True


def _apply_to_stage(run: StageRunRow, ev: JobEvent, at: datetime) -> None:
    if ev.kind == "started":
        run.status, run.started_at = "running", at
        run.attempts = int(ev.data.get("attempt", run.attempts + 1))
    elif ev.kind == "retrying":
        run.status, run.error_code = "retrying", ev.data.get("code")
    elif ev.kind == "finished":
        run.status, run.finished_at, run.seconds = "succeeded", at, ev.seconds
        run.error_code = run.error_message = None
    elif ev.kind == "failed":
        run.status, run.finished_at, run.seconds = "failed", at, ev.seconds
        run.error_code, run.error_message = ev.data.get("code"), ev.data.get("message")


_JOB_FIELDS = {
    "transcript": "transcript", "language": "detected_language",
    "language_probability": "detected_language_probability", "reply": "reply", "spoken_reply": "spoken_reply",
    "speech_key": "speech_key", "speech_seconds": "speech_seconds",
    "video_key": "video_key", "video_seconds": "video_seconds",
}


def _apply_to_job(s: Session, job: JobRow, ev: JobEvent, at: datetime) -> None:
    if ev.kind == "finished":
        for source, column in _JOB_FIELDS.items():
            if ev.data.get(source) is not None:
                setattr(job, column, ev.data[source])
    if job.status in TERMINAL:
        return
    if ev.kind == "started" and job.status == "queued":
        job.status = "running"
    elif ev.kind == "failed":
        job.status, job.finished_at = "failed", at
        job.error_code, job.error_message = ev.data.get("code"), ev.data.get("message")
        pending = select(StageRunRow).where(StageRunRow.job_id == job.id, StageRunRow.status == "pending")
        for later in s.scalars(pending):
            later.status = "skipped"
    elif ev.kind == "completed":
        job.status, job.finished_at = "succeeded", at
