"""Creating and migrating the schema: done by ``talkfarm-admin db upgrade``, never at import.

Each entry of ``MIGRATIONS`` brings the schema from the previous version to its
own; ``upgrade`` applies the missing ones in order and records the version.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from coordinator.store.models import ApiKeyRow, AvatarRow, Base, IdempotencyRow, SchemaVersion


class SchemaError(RuntimeError):
    pass


def _v1_initial(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def _v2_language_probability(engine: Engine) -> None:
    """jobs.detected_language_probability: how sure the ASR stage was of the language it detected."""
    # A database created at version 1 by this code already has it (create_all uses today's models).
    if "detected_language_probability" not in {c["name"] for c in inspect(engine).get_columns("jobs")}:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE jobs ADD COLUMN detected_language_probability FLOAT"))


def _v3_personas_and_avatars(engine: Engine) -> None:
    """The avatars table and sessions.avatar_id (a session's persona: system prompt, voice, avatar)."""
    AvatarRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    if "avatar_id" not in {c["name"] for c in inspect(engine).get_columns("sessions")}:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE sessions ADD COLUMN avatar_id VARCHAR(36)"))


def _v4_reliability(engine: Engine) -> None:
    """jobs.deadline_at, published_at and dispatch (the sweeper's), job_events.event_id (unique: deduplication)."""
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    json_type = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    with engine.begin() as conn:
        for name, kind in (("deadline_at", "TIMESTAMP WITH TIME ZONE" if engine.dialect.name == "postgresql"
                            else "DATETIME"),
                           ("published_at", "TIMESTAMP WITH TIME ZONE" if engine.dialect.name == "postgresql"
                            else "DATETIME"),
                           ("dispatch", json_type)):
            if name not in columns:
                conn.execute(text(f"ALTER TABLE jobs ADD COLUMN {name} {kind}"))
        # Jobs accepted before this version were published when they were accepted.
        conn.execute(text("UPDATE jobs SET published_at = created_at WHERE published_at IS NULL"))
        indexes = {i["name"] for i in inspect(engine).get_indexes("jobs")}
        if "ix_jobs_deadline_at" not in indexes:
            conn.execute(text("CREATE INDEX ix_jobs_deadline_at ON jobs (deadline_at)"))
    if "event_id" not in {c["name"] for c in inspect(engine).get_columns("job_events")}:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE job_events ADD COLUMN event_id VARCHAR(160)"))
            conn.execute(text("CREATE UNIQUE INDEX uq_job_events_event_id ON job_events (event_id)"))


def _v5_keys_and_owners(engine: Engine) -> None:
    """API keys, idempotency keys, and the owning key of every session, avatar and job ("" before keys)."""
    ApiKeyRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    IdempotencyRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    for table in ("sessions", "avatars", "jobs"):
        if "owner_id" not in {c["name"] for c in inspect(engine).get_columns(table)}:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN owner_id VARCHAR(36) NOT NULL DEFAULT ''"))
                conn.execute(text(f"CREATE INDEX ix_{table}_owner_id ON {table} (owner_id)"))


def _v6_spoken_forms(engine: Engine) -> None:
    """jobs.spoken_text and jobs.spoken_reply: what is said of the written text and reply."""
    have = {c["name"] for c in inspect(engine).get_columns("jobs")}
    with engine.begin() as conn:
        for column in ("spoken_text", "spoken_reply"):
            if column not in have:
                conn.execute(text(f"ALTER TABLE jobs ADD COLUMN {column} TEXT"))


MIGRATIONS: list[Callable[[Engine], None]] = [_v1_initial, _v2_language_probability, _v3_personas_and_avatars,
                                              _v4_reliability, _v5_keys_and_owners, _v6_spoken_forms]
CURRENT_VERSION = len(MIGRATIONS)


def current_version(engine: Engine) -> int:
    if not inspect(engine).has_table(SchemaVersion.__tablename__):
        return 0
    with Session(engine) as session:
        versions = session.scalars(select(SchemaVersion.version)).all()
    return max(versions, default=0)


def upgrade(engine: Engine) -> tuple[int, int]:
    """Apply missing migrations; returns (version before, version after)."""
    before = current_version(engine)
    for version in range(before + 1, CURRENT_VERSION + 1):
        MIGRATIONS[version - 1](engine)
        with Session(engine) as session, session.begin():
            session.add(SchemaVersion(version=version))
    return before, CURRENT_VERSION


def check(engine: Engine) -> None:
    """Raise ``SchemaError`` naming the command to run when the schema is not current."""
    version = current_version(engine)
    if version != CURRENT_VERSION:
        raise SchemaError(
            f"the job store schema is at version {version}, the code needs {CURRENT_VERSION}: "
            "run `talkfarm-admin db upgrade`"
        )
