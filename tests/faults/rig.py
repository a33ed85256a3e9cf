"""Private services with a stand-in farm on them, shared by the fault tests of one module.

Starting a RabbitMQ node, two Redis servers (a PostgreSQL cluster too, if asked) and
the five farm processes takes a quarter of a minute on a small machine, so a test
module starts them once (``private_farm``) and each test breaks one piece and puts
it back. ``Rig.heal``, called before every test, brings back whatever a failed test
left broken (a stopped service, a dead worker, a raised RabbitMQ alarm, a queue
made to refuse publishes, a worker's changed settings) and waits until the farm is
ready again, so one failure does not cascade into the tests after it.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import httpx

from bench.standins import STANDIN_ENV
from tests.faults.farm import FarmServices, FaultFarm
from tests.faults.postgres import PostgresCluster
from tests.faults.process import wait_until
from tests.faults.rabbitmq import RabbitNode
from tests.faults.redis_server import RedisServer
from tests.faults.service import Service


@dataclass
class Rig:
    """The private services, the farm on them, and each worker's settings as the farm started it."""

    rabbit: RabbitNode
    results: RedisServer
    cache: RedisServer
    farm: FaultFarm
    postgres: PostgresCluster | None = None
    _worker_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._worker_env = {stage: dict(worker.process.env or {}) for stage, worker in self.farm.workers.items()}

    def services(self) -> list[Service]:
        """The services under the farm: RabbitMQ, the results and cache Redis, PostgreSQL if any."""
        return [self.rabbit, self.results, self.cache, *([self.postgres] if self.postgres is not None else [])]

    def heal(self, timeout: float = 180.0) -> None:
        """Start whatever is down, clear a RabbitMQ alarm, restore the workers' settings, and wait until
        ``/readyz`` answers ``ready`` (not ``degraded``)."""
        for service in self.services():
            if not service.process.running:
                service.start()
        self.rabbit.unblock_publishers()
        for queue in list(self.rabbit.filled):
            self.rabbit.unfill_queue(queue)
        for stage, worker in self.farm.workers.items():
            if worker.process.env != self._worker_env[stage]:
                worker.process.env = dict(self._worker_env[stage])
                worker.stop()
            if not worker.process.running:
                worker.start()
        if not self.farm.coordinator.process.running:
            self.farm.coordinator.start()
        self.farm.wait_ready(timeout)
        wait_until(lambda: self.farm.readyz().json()["status"] == "ready", timeout, "the farm to be ready",
                   interval=0.2, ignore=(httpx.HTTPError, ValueError), detail=self.farm.logs)


@contextmanager
def private_farm(root: Path, env: Mapping[str, str] | None = None, *, postgres: bool = False,
                 worker_args: Mapping[str, Sequence[str]] | None = None) -> Iterator[Rig]:
    """Start private services and the farm with the stand-in backends (and ``env``) in ``root``; kill them all
    afterwards. ``postgres``: the job store in a private PostgreSQL cluster, else SQLite."""
    with ExitStack() as stack:
        rabbit = stack.enter_context(RabbitNode(root / "rabbitmq"))
        results = stack.enter_context(RedisServer(root / "results-redis", appendonly=True))
        cache = stack.enter_context(RedisServer(root / "cache-redis", maxmemory="64mb"))
        cluster = None
        database = ""
        if postgres:
            cluster = PostgresCluster()
            stack.callback(cluster.remove)
            cluster.start()
            database = cluster.create_database()
        services = FarmServices(rabbit.url, results.url, cache.url, database)
        farm = stack.enter_context(FaultFarm(root / "farm", services, {**STANDIN_ENV, **(env or {})},
                                             worker_args=worker_args))
        yield Rig(rabbit, results, cache, farm, cluster)
