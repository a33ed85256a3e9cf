"""The ledger of a streamed job: which segments have landed, and how many there will be.

A streamed reply is cut into sentences; each sentence goes through TTS and
animation as its own subtasks, so its segments land in any order, on any worker.
The ledger lives in the results Redis (never evicted) and answers the question
no single task can answer alone: *is this the last segment?* The LLM task learns
the number of segments only when it has finished writing, which may be before or
after the last segment lands. ``land`` and ``close`` both check "all landed and
the count known" in one Lua script, and the first call that sees it true claims
the assembly, so the final MP4 is assembled exactly once.

Keys expire a day after their last write: the job store keeps the lasting record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from contracts.settings import Settings
from pipeline.results import results_redis

TTL_SECONDS = 24 * 3600

# KEYS: segments hash, total, claim. ARGV: index, record, ttl.
# Returns 1 when this call completes the job and claims its assembly.
_LAND = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local total = redis.call('GET', KEYS[2])
if total and redis.call('HLEN', KEYS[1]) >= tonumber(total) then
  if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then return 1 end
end
return 0
"""

# KEYS: segments hash, total, claim. ARGV: total, ttl.
_CLOSE = """
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then return 1 end
end
return 0
"""


@dataclass(frozen=True)
class Segment:
    index: int
    video_key: str
    speech_key: str
    seconds: float
    text: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Segment:
        data: dict[str, Any] = json.loads(raw)
        return cls(index=int(data["index"]), video_key=data["video_key"], speech_key=data["speech_key"],
                   seconds=float(data["seconds"]), text=data.get("text", ""))


class SegmentLedger:
    def __init__(self, client: redis.Redis, prefix: str = "", ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = client
        self._prefix = f"{prefix}talkfarm:job:"
        self._ttl = ttl_seconds
        self._land = client.register_script(_LAND)
        self._close = client.register_script(_CLOSE)

    @classmethod
    def from_settings(cls, settings: Settings) -> SegmentLedger:
        return cls(results_redis(settings), prefix=settings.queue_prefix)

    def _keys(self, job_id: str) -> list[str]:
        base = f"{self._prefix}{job_id}"
        return [f"{base}:segments", f"{base}:total", f"{base}:assembling"]

    def land(self, job_id: str, segment: Segment) -> bool:
        """Record a finished segment; True when it is the last one and this call must assemble."""
        return bool(self._land(keys=self._keys(job_id), args=[segment.index, segment.to_json(), self._ttl]))

    def close(self, job_id: str, total: int) -> bool:
        """Record the number of segments; True when all have already landed and this call must assemble."""
        if total < 1:
            raise ValueError("a streamed job has at least one segment")
        return bool(self._close(keys=self._keys(job_id), args=[total, self._ttl]))

    def total(self, job_id: str) -> int | None:
        raw = self._redis.get(self._keys(job_id)[1])
        return int(raw) if raw is not None else None

    def segments(self, job_id: str) -> list[Segment]:
        """The landed segments, in order."""
        raw: dict[bytes, bytes] = self._redis.hgetall(self._keys(job_id)[0])
        return sorted((Segment.from_json(v) for v in raw.values()), key=lambda s: s.index)


def ledger_for(settings: Settings) -> SegmentLedger:
    """The ledger on the process's results Redis client (cheap: the client and its pool are shared)."""
    return SegmentLedger.from_settings(settings)
