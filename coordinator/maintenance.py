"""The coordinator's periodic work: the sweeper, which ends what would otherwise never end, and retention.

**Sweeper** (every ``reliability.sweep_interval_seconds``):

* a job accepted but never published (the coordinator stopped between its row and
  its first publish) is published from the row's ``dispatch``; if the broker is
  still down at its deadline, the job fails with ``broker_unavailable``;
* a job past its deadline (its plan's hard limits added up, plus slack) fails with
  ``timed_out``, and its stop flag keeps its remaining subtasks from starting;
* a job whose first stage still waits is published again one priority level higher
  for every ``auth.priority_aging_seconds`` it has waited (``pipeline.claims`` keeps
  the copies from both running), so no tier starves another.

**Retention** (every ``retention.interval_seconds``): finished jobs older than
``job_days`` go with their events (a job whose video is still in the video cache
stays); artifact files that no remaining job or avatar names go once older than
``job_days`` + ``orphan_hours`` (text artifacts among them: only dispatches and events
name them, and by then the job's row holds its texts); ``.partial-*`` files and scratch folders of killed
writers go after ``scratch_hours``; the prepared-portrait cache is cut back to
``prepared_max_bytes``, least recently used first.

Several coordinators may run: each round, the one holding a short lease in the
results Redis does the work. Everything here is idempotent.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import redis

from cache.store import Cache
from contracts.artifacts import ArtifactStore
from contracts.settings import Settings
from coordinator.jobs import dispatched, publish_job
from coordinator.store.keys import IdempotencyStore
from coordinator.store.repo import JobStore
from pipeline.cancel import CancelFlags
from pipeline.dispatch import aged_priority
from pipeline.results import results_redis

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    published: list[str] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)


@dataclass
class RetentionReport:
    jobs: int = 0
    artifacts: int = 0
    leftovers: int = 0
    prepared: int = 0


class Maintenance:
    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore, cache: Cache,
                 changed: Callable[[str], None] = lambda job_id: None) -> None:
        self.settings, self.store, self.artifacts, self.cache = settings, store, artifacts, cache
        self._changed = changed  # wakes a job's event streams
        self._flags = CancelFlags.from_settings(settings)
        self._redis = results_redis(settings)
        self._me = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retained_at = float("-inf")

    # --- the sweeper -------------------------------------------------------------
    def sweep(self, now: datetime | None = None) -> SweepReport:
        now = now or datetime.now(timezone.utc)
        report = SweepReport()
        grace = timedelta(seconds=self.settings.reliability.publish_grace_seconds)
        for job in self.store.unpublished(now - grace):
            if job.dispatch is None:
                continue
            try:
                payload, sentence_keys = dispatched(job.dispatch, self.artifacts)
                publish_job(payload, sentence_keys, self.settings)
            except Exception as e:
                log.warning("could not publish the accepted job %s yet: %s", job.id, e)
                continue
            self.store.mark_published(job.id)
            self.store.add_event(job.id, payload.stage, "queued", {"stream": payload.stream, "sweeper": True})
            report.published.append(job.id)
            log.info("published the accepted job %s, which had not been", job.id)
        report.raised = self._age(now)
        for job in self.store.overdue(now):
            unpublished = job.published_at is None
            code = "broker_unavailable" if unpublished else "timed_out"
            message = ("the job could not be queued before its deadline" if unpublished else
                       "the job did not finish before its deadline")
            try:
                self._flags.cancel(job.id)  # its remaining subtasks must not start
            except redis.RedisError as e:
                log.warning("could not stop the subtasks of the overdue job %s: %s", job.id, e)
            if self.store.mark_failed(job.id, code, message):
                self._changed(job.id)
                report.timed_out.append(job.id)
                log.warning("job %s failed: %s (%s)", job.id, message, code)
        return report

    def _age(self, now: datetime) -> list[str]:
        """Publish again, one priority level higher, the first stage of jobs that wait: whatever the higher
        tiers send, a job rises until it is served (the copy that starts first does the work)."""
        aging = self.settings.auth.priority_aging_seconds
        if aging <= 0:
            return []
        raised: list[str] = []
        for job in self.store.waiting(now - timedelta(seconds=aging)):
            assert job.dispatch is not None
            payload, sentence_keys = dispatched(job.dispatch, self.artifacts)
            due = aged_priority(payload, self.settings, now.timestamp())
            if due <= int(job.dispatch.get("priority", payload.priority)):
                continue
            try:
                publish_job(payload, sentence_keys, self.settings)
            except Exception as e:
                log.warning("could not raise the waiting job %s: %s", job.id, e)
                continue
            self.store.record_priority(job.id, due)
            raised.append(job.id)
        return raised

    # --- retention -----------------------------------------------------------------
    def retain(self, now: datetime | None = None) -> RetentionReport:
        now = now or datetime.now(timezone.utc)
        rules = self.settings.retention
        report = RetentionReport()
        if rules.job_days > 0:
            before = now - timedelta(days=rules.job_days)
            while batch := self.store.finished_before(before):
                gone = [job_id for job_id, key in batch if not self._cached(key)]
                if not gone:
                    break
                self.store.delete_jobs(gone)
                report.jobs += len(gone)
                if len(gone) < len(batch):
                    break  # the rest of this batch is cached; later batches wait for the next round
            orphan_before = (before - timedelta(hours=rules.orphan_hours)).timestamp()
            keep = self.store.referenced_keys()
            orphans = [f for f in self.artifacts.stored() if f.mtime < orphan_before and f.key not in keep]
            for stored in orphans:
                report.artifacts += self.artifacts.remove(stored.key)
            if orphans:
                self.store.delete_artifact_rows([f.key for f in orphans])
        scratch_before = (now - timedelta(hours=rules.scratch_hours)).timestamp()
        for path, mtime in list(self.artifacts.leftovers()):
            if mtime < scratch_before:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                report.leftovers += 1
        report.prepared = self._trim_prepared(rules.prepared_max_bytes)
        IdempotencyStore(self.store.engine).expire(self.settings.auth.idempotency_hours, now)
        return report

    def _cached(self, key: str | None) -> bool:
        return key is not None and self.cache.contains(key)

    def _trim_prepared(self, max_bytes: int) -> int:
        folder = self.artifacts.prepared_dir
        if not folder.is_dir():
            return 0
        files = sorted((p.stat().st_atime, p.stat().st_size, p) for p in folder.rglob("*") if p.is_file())
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, path in files:  # least recently used first
            if total <= max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    # --- the thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        interval = self.settings.reliability.sweep_interval_seconds
        while not self._stop.wait(interval):
            if not self._lead(int(interval * 3)):
                continue
            try:
                self.sweep()
                if self._due_for_retention():
                    report = self.retain()
                    log.info("retention removed %d jobs, %d artifacts, %d leftovers, %d prepared portraits",
                             report.jobs, report.artifacts, report.leftovers, report.prepared)
            except Exception:  # the store or the disk is down: the next round tries again
                log.exception("maintenance round failed")

    def _due_for_retention(self) -> bool:
        now = datetime.now(timezone.utc).timestamp()
        if now - self._retained_at < self.settings.retention.interval_seconds:
            return False
        self._retained_at = now
        return True

    def _lead(self, ttl: int) -> bool:
        """Hold the maintenance lease (one coordinator does each round); False when another holds it."""
        key = f"{self.settings.queue_prefix}talkfarm:maintenance"
        try:
            if self._redis.set(key, self._me, nx=True, ex=ttl):
                return True
            if self._redis.get(key) == self._me.encode():
                self._redis.expire(key, ttl)
                return True
        except redis.RedisError as e:
            log.warning("maintenance skipped: the results Redis does not answer (%s)", e)
        return False
