"""The ledger of a streamed job: which segments have landed, and how many there will be.

A streamed reply is cut into sentences; each sentence goes through TTS and
animation as its own subtasks, so its segments land in any order, on any worker.
The ledger lives in the results Redis (never evicted) and answers the question
no single task can answer alone: *is this the last segment?* The LLM task learns
the number of segments only when it has finished writing, which may be before or
after the last segment lands. ``land`` and ``close`` both check "all landed and
the count known" (every index from 0 to the count, exactly) in one Lua script;
the call that sees it true claims the assembly for a lease and publishes it, and
``assembled`` marks it published, so the MP4 is assembled once. A claimer that
crashes before publishing is redelivered with the same task ID and claims again.
The keys live in the results Redis, which runs with an append-only file: a
restart keeps them.

A landed segment is recorded by its artifact keys (video, speech, the sentence's text),
never by its words. Keys expire a day after their last write: the job store keeps the
lasting record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from contracts.settings import Settings
from pipeline.results import results_redis

TTL_SECONDS = 24 * 3600
LEASE_SECONDS = 120

# Shared by both scripts. KEYS: segments hash, total, claim, assembled. ARGV[4]: owner, ARGV[5]: lease.
# The set is complete when the count is known and every index 0..total-1 has landed. The caller that
# sees it complete claims the assembly for a lease: the claim passes to another caller only once the
# lease has run out, and a redelivered claimer (the same task ID) gets it back. Once the assembly is
# published, ``assembled`` is set and nobody claims again.
_CLAIM = """
local function claim()
  local total = redis.call('GET', KEYS[2])
  if not total or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
  for i = 0, tonumber(total) - 1 do
    if redis.call('HEXISTS', KEYS[1], tostring(i)) == 0 then return 0 end
  end
  local holder = redis.call('GET', KEYS[3])
  if holder and holder ~= ARGV[4] then return 0 end
  redis.call('SET', KEYS[3], ARGV[4], 'EX', tonumber(ARGV[5]))
  return 1
end
"""

# ARGV: index, record, ttl, owner, lease. Returns 1 when this call completes the set and claims the assembly.
_LAND = _CLAIM + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return claim()
"""

# ARGV: total, (unused), ttl, owner, lease.
_CLOSE = _CLAIM + """
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return claim()
"""


@dataclass(frozen=True)
class Segment:
    index: int
    video_key: str
    speech_key: str
    seconds: float
    text_key: str | None  # the sentence it says (a text artifact, ``contracts.job_texts``)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Segment:
        data: dict[str, Any] = json.loads(raw)
        return cls(index=int(data["index"]), video_key=data["video_key"], speech_key=data["speech_key"],
                   seconds=float(data["seconds"]), text_key=data.get("text_key"))


class SegmentLedger:
    def __init__(self, client: redis.Redis, prefix: str = "", ttl_seconds: int = TTL_SECONDS,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self._redis = client
        self._prefix = f"{prefix}talkfarm:job:"
        self._ttl = ttl_seconds
        self._lease = lease_seconds
        self._land = client.register_script(_LAND)
        self._close = client.register_script(_CLOSE)

    @classmethod
    def from_settings(cls, settings: Settings) -> SegmentLedger:
        return cls(results_redis(settings), prefix=settings.queue_prefix)

    def _keys(self, job_id: str) -> list[str]:
        base = f"{self._prefix}{job_id}"
        return [f"{base}:segments", f"{base}:total", f"{base}:assembling", f"{base}:assembled"]

    def land(self, job_id: str, segment: Segment, owner: str) -> bool:
        """Record a finished segment; True when the set is now complete and ``owner`` must publish the assembly."""
        args = [segment.index, segment.to_json(), self._ttl, owner, self._lease]
        return bool(self._land(keys=self._keys(job_id), args=args))

    def close(self, job_id: str, total: int, owner: str) -> bool:
        """Record the number of segments; True when all have landed and ``owner`` must publish the assembly."""
        if total < 1:
            raise ValueError("a streamed job has at least one segment")
        return bool(self._close(keys=self._keys(job_id), args=[total, "", self._ttl, owner, self._lease]))

    def mark_assembled(self, job_id: str) -> None:
        """The assembly is published: nobody claims it again."""
        keys = self._keys(job_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys[3], "1", ex=self._ttl)
            pipe.delete(keys[2])
            pipe.execute()

    def assembled(self, job_id: str) -> bool:
        return bool(self._redis.exists(self._keys(job_id)[3]))

    def total(self, job_id: str) -> int | None:
        raw = self._redis.get(self._keys(job_id)[1])
        return int(raw) if raw is not None else None

    def segments(self, job_id: str) -> list[Segment]:
        """The landed segments, in order (indices past the count, which no stage makes, left out)."""
        raw: dict[bytes, bytes] = self._redis.hgetall(self._keys(job_id)[0])
        total = self.total(job_id)
        landed = (Segment.from_json(v) for v in raw.values())
        return sorted((s for s in landed if total is None or s.index < total), key=lambda s: s.index)


def ledger_for(settings: Settings) -> SegmentLedger:
    """The ledger on the process's results Redis client (cheap: the client and its pool are shared)."""
    return SegmentLedger.from_settings(settings)
