"""API keys and idempotency records in the job store.

A token is ``tf_`` and 43 URL-safe characters (256 random bits), shown once when
the key is made; the store keeps only its SHA-256. Keys are revoked, never
deleted, so what they made stays attributable.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from coordinator.store.models import ApiKeyRow, IdempotencyRow, utcnow

TOKEN_PREFIX = "tf_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, name: str, tier: str, operator: bool = False) -> tuple[ApiKeyRow, str]:
        """A new key and its token (the only time the token is known)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(id=str(uuid.uuid4()), name=name, tier=tier, token_hash=token_hash(token), operator=operator)
        with self._sessions() as s, s.begin():
            s.add(row)
        return row, token

    def find(self, token: str) -> ApiKeyRow | None:
        """The live key of ``token``; None for an unknown or revoked one."""
        with self._sessions() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.token_hash == token_hash(token)))
        return row if row is not None and row.revoked_at is None else None

    def all(self) -> list[ApiKeyRow]:
        with self._sessions() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))

    def revoke(self, id_or_name: str) -> list[ApiKeyRow]:
        """Revoke the key with this ID, or every live key with this name; returns what was revoked."""
        with self._sessions() as s, s.begin():
            rows = list(s.scalars(select(ApiKeyRow).where(
                or_(ApiKeyRow.id == id_or_name, ApiKeyRow.name == id_or_name), ApiKeyRow.revoked_at.is_(None))))
            for row in rows:
                row.revoked_at = utcnow()
            return rows


class IdempotencyStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def find(self, owner_id: str, key: str) -> IdempotencyRow | None:
        with self._sessions() as s:
            return s.scalar(select(IdempotencyRow).where(IdempotencyRow.owner_id == owner_id,
                                                         IdempotencyRow.key == key))

    def record(self, owner_id: str, key: str, fingerprint: str, job_id: str) -> IdempotencyRow:
        """Record the job a key made; when a concurrent request recorded one first, that one is returned."""
        row = IdempotencyRow(owner_id=owner_id, key=key, fingerprint=fingerprint, job_id=job_id)
        try:
            with self._sessions() as s, s.begin():
                s.add(row)
            return row
        except IntegrityError:
            found = self.find(owner_id, key)
            if found is None:
                raise
            return found

    def forget(self, owner_id: str, key: str, job_id: str) -> None:
        """Drop the record of a submit that was refused (so the same key may be tried again)."""
        with self._sessions() as s, s.begin():
            s.execute(delete(IdempotencyRow).where(IdempotencyRow.owner_id == owner_id, IdempotencyRow.key == key,
                                                   IdempotencyRow.job_id == job_id))

    def expire(self, older_than_hours: float, now: datetime | None = None) -> int:
        before = (now or utcnow()) - timedelta(hours=older_than_hours)
        with self._sessions() as s, s.begin():
            result = s.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < before))
            return int(getattr(result, "rowcount", 0))
