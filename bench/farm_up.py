"""A whole farm for a benchmark run: private services, the farm's processes, stand-in or embedded backends.

``start_farm`` starts a private RabbitMQ node, a results Redis with an append-only
file and an LRU cache Redis, the job store in SQLite (or a new database on the
machine's PostgreSQL, dropped afterwards), then the coordinator and one worker
per stage as separate processes (``tests.faults.farm.FaultFarm``). Everything is
entered into the caller's ``ExitStack``: closing it kills the farm and the services.
``bench.soak`` and ``bench.load`` run on it.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Mapping

from bench.standins import STANDIN_ENV
from pipeline.stages import STAGE_NAMES
from tests.conftest import FARM_LIMITS
from tests.faults.farm import FarmServices, FaultFarm
from tests.faults.postgres import scratch_database
from tests.faults.rabbitmq import RabbitNode
from tests.faults.redis_server import RedisServer

BACKENDS = ("standin", "embedded")
DATABASES = ("sqlite", "postgresql")
# A tier whose limits no benchmark reaches (the tests' tiers are there too): a run measures the farm, not
# the quotas. A soak of 2,600 submits of a 790 KB portrait passed the default tier's 2 GiB a day.
BENCH_TIER = "bench"
BENCH_LIMITS = {"requests_per_minute": 1_000_000, "burst": 100_000, "max_jobs_in_flight": 100_000,
                "upload_bytes_per_day": 10**13, "max_event_streams": 100_000, "priority": 4}


def start_farm(stack: ExitStack, tmp: Path, backends: str = "standin", database: str = "sqlite",
               concurrency: int = 0, env: Mapping[str, str] | None = None) -> FaultFarm:
    """A started farm in ``tmp``, with the tests' key tiers and ``BENCH_TIER``; ``backends``: the stand-ins of
    ``bench.standins`` (the farm's own cost) or the embedded models; ``concurrency``: processes per worker
    (0: the settings'); ``env``: more settings."""
    if backends not in BACKENDS or database not in DATABASES:
        raise ValueError(f"backends {backends!r} (one of {BACKENDS}), database {database!r} (one of {DATABASES})")
    rabbit = stack.enter_context(RabbitNode(tmp / "rabbitmq"))
    results = stack.enter_context(RedisServer(tmp / "results-redis", appendonly=True))
    cache = stack.enter_context(RedisServer(tmp / "cache-redis", maxmemory="256mb"))
    database_url = stack.enter_context(scratch_database()) if database == "postgresql" else ""
    tiers = {**json.loads(FARM_LIMITS["TALKFARM_AUTH__TIERS"]), BENCH_TIER: BENCH_LIMITS}
    settings = {**FARM_LIMITS, "TALKFARM_AUTH__TIERS": json.dumps(tiers),
                **(STANDIN_ENV if backends == "standin" else {}), **(env or {})}
    worker_args = ["--concurrency", str(concurrency)] if concurrency else []
    farm = FaultFarm(tmp / "farm", FarmServices(rabbit.url, results.url, cache.url, database_url), settings,
                     worker_args={stage: worker_args for stage in STAGE_NAMES})
    stack.enter_context(farm)
    return farm
