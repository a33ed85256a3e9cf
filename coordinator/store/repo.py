"""Reading and writing the job store. Synchronous: the API calls it through ``asyncio.to_thread``.

Writes that concurrent requests or redelivered events may repeat are idempotent on
SQLite and PostgreSQL alike: an artifact row that exists already is kept
(``INSERT … ON CONFLICT DO NOTHING``), and an event whose ``event_id`` is stored
already is dropped, job state untouched.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import CursorResult, Engine, String, cast, create_engine, delete, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from contracts.events import JobEvent
from coordinator.store.models import ArtifactRow, AvatarRow, EventRow, JobRow, SessionRow, StageRunRow, utcnow

log = logging.getLogger(__name__)
TERMINAL = ("succeeded", "failed", "cancelled")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is still crash-safe for the database (a power cut may lose the last commits,
            # never corrupt it) and spares an fsync on every commit: each worker event is a commit.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _insert_ignoring_duplicates(s: Session, model: Any, values: dict[str, Any], key: str) -> bool:
    """INSERT a row unless one with the same unique ``key`` exists; True when this call inserted it."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=[key])
    result: CursorResult[Any] = s.execute(statement)  # type: ignore[assignment]
    return bool(result.rowcount)


def _locked_job(s: Session, job_id: str) -> JobRow | None:
    """The job's row, read inside a transaction that holds it until the end: a cancel, a sweep and a worker
    event on one job take turns instead of one overwriting what another decided.

    PostgreSQL locks the row (``SELECT … FOR UPDATE``). SQLite has one writer at a time, and pysqlite opens
    the transaction only at the first write, so a no-op UPDATE comes first: it waits for the write lock, and
    the read after it sees the latest commit.
    """
    if s.get_bind().dialect.name == "sqlite":
        s.execute(update(JobRow).where(JobRow.id == job_id).values(id=JobRow.id))
        return s.get(JobRow, job_id, populate_existing=True)
    return s.get(JobRow, job_id, with_for_update=True)


def _add_artifact(s: Session, artifact: ArtifactRow) -> None:
    _insert_ignoring_duplicates(s, ArtifactRow, {"key": artifact.key, "kind": artifact.kind, "size": artifact.size,
                                                 "created_at": artifact.created_at or utcnow()}, "key")


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

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
            _add_artifact(s, portrait)
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
            _insert_ignoring_duplicates(s, SessionRow, {"id": job.session_id, "owner_id": job.owner_id or "",
                                                        "created_at": utcnow()}, "id")
            for artifact in artifacts:
                _add_artifact(s, artifact)
            s.add(job)
            s.flush()
            for position, stage in enumerate(plan):
                s.add(StageRunRow(job_id=job.id, stage=stage, position=position))

    def jobs_in_flight(self, owner_id: str) -> int:
        """Jobs of ``owner_id`` that have not ended."""
        with self._sessions() as s:
            return int(s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.owner_id == owner_id, JobRow.status.not_in(TERMINAL))) or 0)

    def mark_published(self, job_id: str, event: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """The job's first publish is done; with ``event`` (stage, kind, data) stored in the same transaction."""
        with self._sessions() as s, s.begin():
            s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.published_at.is_(None))
                      .values(published_at=utcnow()))
            if event is not None:
                stage, kind, data = event
                s.add(EventRow(job_id=job_id, stage=stage, kind=kind, data=data))

    def forget_job(self, job_id: str) -> None:
        """Remove a job that was never accepted (its publication failed and the client got a 503)."""
        with self._sessions() as s, s.begin():
            s.execute(delete(EventRow).where(EventRow.job_id == job_id))
            s.execute(delete(StageRunRow).where(StageRunRow.job_id == job_id))
            s.execute(delete(JobRow).where(JobRow.id == job_id))

    def unpublished(self, older_than: datetime, limit: int = 100) -> list[JobRow]:
        """Queued jobs whose first subtasks were never published (the coordinator stopped in between)."""
        with self._sessions() as s:
            return list(s.scalars(select(JobRow).where(
                JobRow.status == "queued", JobRow.published_at.is_(None), JobRow.created_at < older_than,
            ).order_by(JobRow.created_at).limit(limit)))

    def waiting(self, published_before: datetime, limit: int = 100) -> list[JobRow]:
        """Published jobs whose first stage has not started since ``published_before``."""
        with self._sessions() as s:
            return list(s.scalars(select(JobRow).where(
                JobRow.status == "queued", JobRow.published_at.is_not(None), JobRow.published_at < published_before,
                JobRow.dispatch.is_not(None)).order_by(JobRow.published_at).limit(limit)))

    def record_priority(self, job_id: str, priority: int) -> None:
        """The priority the job's waiting first stage was last published at."""
        with self._sessions() as s, s.begin():
            job = _locked_job(s, job_id)
            if job is not None and job.dispatch is not None:
                job.dispatch = {**job.dispatch, "priority": priority}

    def overdue(self, now: datetime, limit: int = 100) -> list[JobRow]:
        """Jobs past their deadline that have not ended."""
        with self._sessions() as s:
            return list(s.scalars(select(JobRow).where(
                JobRow.status.in_(("queued", "running")), JobRow.deadline_at.is_not(None), JobRow.deadline_at < now,
            ).order_by(JobRow.deadline_at).limit(limit)))

    def get_job(self, job_id: str) -> tuple[JobRow, list[StageRunRow]] | None:
        with self._sessions() as s:
            job = s.get(JobRow, job_id)
            if job is None:
                return None
            stages = list(s.scalars(
                select(StageRunRow).where(StageRunRow.job_id == job_id).order_by(StageRunRow.position)
            ))
            return job, stages

    def mark_failed(self, job_id: str, code: str, message: str) -> bool:
        """End a job that has not ended with ``code``, with a ``failed`` event; False when it had ended."""
        with self._sessions() as s, s.begin():
            job = _locked_job(s, job_id)
            if job is None or job.status in TERMINAL:
                return False
            now = utcnow()
            job.status, job.error_code, job.error_message, job.finished_at = "failed", code, message, now
            unfinished = select(StageRunRow).where(StageRunRow.job_id == job_id,
                                                   StageRunRow.status.in_(("pending", "running", "retrying")))
            for run in s.scalars(unfinished):
                run.status = "skipped" if run.status == "pending" else "failed"
            s.add(EventRow(job_id=job_id, stage="job", kind="failed", at=now, data={"code": code, "message": message}))
            return True

    def reopen(self, job_id: str, deadline_seconds: float = 3600.0) -> bool:
        """Put a failed job back to ``running`` with a new deadline (its dead-lettered task is replayed)."""
        with self._sessions() as s, s.begin():
            job = _locked_job(s, job_id)
            if job is None or job.status != "failed":
                return False
            job.status, job.error_code, job.error_message, job.finished_at = "running", None, None, None
            job.deadline_at = utcnow() + timedelta(seconds=deadline_seconds)
            s.add(EventRow(job_id=job_id, stage="job", kind="queued", at=utcnow(), data={"replayed": True}))
            return True

    def mark_cancelled(self, job_id: str) -> bool:
        """Cancel a job that has not ended; False when it had already ended."""
        with self._sessions() as s, s.begin():
            job = _locked_job(s, job_id)
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

    # --- retention ---------------------------------------------------------------
    def finished_before(self, before: datetime, limit: int = 500) -> list[tuple[str, str | None]]:
        """(id, cache key) of jobs that ended before ``before``, oldest first."""
        with self._sessions() as s:
            rows = s.execute(select(JobRow.id, JobRow.cache_key).where(
                JobRow.status.in_(TERMINAL), JobRow.finished_at < before).order_by(JobRow.finished_at).limit(limit))
            return [(row[0], row[1]) for row in rows]

    def delete_jobs(self, job_ids: Sequence[str]) -> None:
        """Remove jobs with their stage runs and events."""
        with self._sessions() as s, s.begin():
            s.execute(delete(EventRow).where(EventRow.job_id.in_(job_ids)))
            s.execute(delete(StageRunRow).where(StageRunRow.job_id.in_(job_ids)))
            s.execute(delete(JobRow).where(JobRow.id.in_(job_ids)))

    def event_data(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The data of every event of these jobs."""
        with self._sessions() as s:
            return [dict(data or {}) for data in s.scalars(select(EventRow.data).where(EventRow.job_id.in_(job_ids)))]

    def still_named(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` a remaining job (its columns or its dispatch), avatar or event still names (content
        is shared between owners; text artifacts are named in dispatches and events only)."""
        named: set[str] = set()
        with self._sessions() as s:
            for column in (JobRow.portrait_key, JobRow.audio_key, JobRow.speech_key, JobRow.video_key):
                named.update(k for k in s.scalars(select(column).where(column.in_(keys))) if k)
            named.update(s.scalars(select(AvatarRow.portrait_key).where(AvatarRow.portrait_key.in_(keys))))
            for key in set(keys) - named:
                if (s.scalar(select(EventRow.id).where(cast(EventRow.data, String).contains(key)).limit(1))
                        or s.scalar(select(JobRow.id).where(cast(JobRow.dispatch, String).contains(key)).limit(1))):
                    named.add(key)
        return named

    def delete_session(self, session_id: str) -> None:
        """The session, its jobs and their events."""
        with self._sessions() as s, s.begin():
            jobs = select(JobRow.id).where(JobRow.session_id == session_id)
            s.execute(delete(EventRow).where(EventRow.job_id.in_(jobs)))
            s.execute(delete(StageRunRow).where(StageRunRow.job_id.in_(jobs)))
            s.execute(delete(JobRow).where(JobRow.session_id == session_id))
            s.execute(delete(SessionRow).where(SessionRow.id == session_id))

    def delete_avatar(self, avatar_id: str) -> None:
        """The avatar; sessions that used it as their portrait no longer have one."""
        with self._sessions() as s, s.begin():
            s.execute(update(SessionRow).where(SessionRow.avatar_id == avatar_id).values(avatar_id=None))
            s.execute(delete(AvatarRow).where(AvatarRow.id == avatar_id))

    def referenced_keys(self) -> set[str]:
        """Artifact keys that the remaining jobs' columns and the avatars name (not the text artifacts, which
        only dispatches and events name: the rows hold the texts, so retention may let them go)."""
        keys: set[str] = set()
        with self._sessions() as s:
            for row in s.execute(select(JobRow.portrait_key, JobRow.audio_key, JobRow.speech_key, JobRow.video_key)):
                keys.update(k for k in row if k)
            keys.update(s.scalars(select(AvatarRow.portrait_key)))
        return keys

    def delete_artifact_rows(self, keys: Sequence[str]) -> None:
        with self._sessions() as s, s.begin():
            s.execute(delete(ArtifactRow).where(ArtifactRow.key.in_(keys),
                                                ArtifactRow.key.not_in(select(AvatarRow.portrait_key))))

    def counts(self) -> dict[str, int]:
        """Row counts per table (used by operators and by tests that check nothing changed)."""
        with self._sessions() as s:
            return {
                model.__tablename__: s.scalar(select(func.count()).select_from(model)) or 0
                for model in (SessionRow, JobRow, StageRunRow, ArtifactRow, EventRow, AvatarRow)
            }

    # --- events from the workers ----------------------------------------------
    def apply_event(self, ev: JobEvent) -> bool:
        """Persist one worker event; False when the job is unknown to this store or the event is stored already."""
        at = datetime.fromtimestamp(ev.at, timezone.utc)
        with self._sessions() as s, s.begin():
            job = _locked_job(s, ev.job_id)
            if job is None:
                return False
            fresh = _insert_ignoring_duplicates(s, EventRow, {
                "event_id": ev.event_id, "job_id": ev.job_id, "stage": ev.stage, "kind": ev.kind, "at": at,
                "data": {**ev.data, "seconds": ev.seconds}}, "event_id")
            if not fresh:
                return False
            run = s.scalar(select(StageRunRow).where(StageRunRow.job_id == ev.job_id,
                                                     StageRunRow.stage == ev.stage))
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
