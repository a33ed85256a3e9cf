"""A whole farm for a benchmark run: private services, the farm's processes, stand-in or embedded backends.

``start_farm`` starts a private RabbitMQ node, a results Redis with an append-only
file and an LRU cache Redis, the job store in SQLite (or a new database on the
machine's PostgreSQL, dropped afterwards), then the coordinator and one worker
per stage as separate processes (``tests.faults.farm.FaultFarm``). Everything is
entered into the caller's ``ExitStack``: closing it kills the farm and the services.
``bench.soak`` and ``bench.load`` run on it.
"""

from __future__ import annotations

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


def start_farm(stack: ExitStack, tmp: Path, backends: str = "standin", database: str = "sqlite",
               concurrency: int = 0, env: Mapping[str, str] | None = None) -> FaultFarm:
    """A started farm in ``tmp``; ``backends``: the stand-ins of ``bench.standins`` (the farm's own cost) or
    the embedded models; ``concurrency``: processes per worker (0: the settings'); ``env``: more settings."""
    if backends not in BACKENDS or database not in DATABASES:
        raise ValueError(f"backends {backends!r} (one of {BACKENDS}), database {database!r} (one of {DATABASES})")
    rabbit = stack.enter_context(RabbitNode(tmp / "rabbitmq"))
    results = stack.enter_context(RedisServer(tmp / "results-redis", appendonly=True))
    cache = stack.enter_context(RedisServer(tmp / "cache-redis", maxmemory="256mb"))
    database_url = stack.enter_context(scratch_database()) if database == "postgresql" else ""
    settings = {**FARM_LIMITS, **(STANDIN_ENV if backends == "standin" else {}), **(env or {})}
    worker_args = ["--concurrency", str(concurrency)] if concurrency else []
    farm = FaultFarm(tmp / "farm", FarmServices(rabbit.url, results.url, cache.url, database_url), settings,
                     worker_args={stage: worker_args for stage in STAGE_NAMES})
    stack.enter_context(farm)
    return farm
