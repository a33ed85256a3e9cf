"""Creating and migrating the schema: done by ``talkfarm-admin db upgrade``, never at import.

Each entry of ``MIGRATIONS`` brings the schema from the previous version to its
own; ``upgrade`` applies the missing ones in order and records the version.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from coordinator.store.models import Base, SchemaVersion


class SchemaError(RuntimeError):
    pass


def _v1_initial(engine: Engine) -> None:
    Base.metadata.create_all(engine)


MIGRATIONS: list[Callable[[Engine], None]] = [_v1_initial]
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
