"""Fixtures of the fault kit: private services per test (a fault test kills them) and a stand-in farm on them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bench.standins import STANDIN_ENV
from tests.faults.farm import FarmServices, FaultFarm
from tests.faults.postgres import PostgresCluster
from tests.faults.rabbitmq import RabbitNode
from tests.faults.redis_server import RedisServer


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[RabbitNode]:
    """A private RabbitMQ node, started; killed afterwards."""
    with RabbitNode(tmp_path / "rabbitmq") as node:
        yield node


@pytest.fixture
def results_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis in the results role: append-only file, fsync every second."""
    with RedisServer(tmp_path / "results-redis", appendonly=True) as server:
        yield server


@pytest.fixture
def cache_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis in the cache role: 64 MB, least recently used keys evicted, nothing persisted."""
    with RedisServer(tmp_path / "cache-redis", maxmemory="64mb") as server:
        yield server


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster, started; removed afterwards."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def standin_farm(tmp_path: Path, rabbit: RabbitNode, results_redis: RedisServer,
                 cache_redis: RedisServer) -> Iterator[FaultFarm]:
    """The farm as separate processes with the instant stand-in backends, on private services and SQLite."""
    with FaultFarm(tmp_path / "farm", FarmServices(rabbit.url, results_redis.url, cache_redis.url),
                   STANDIN_ENV) as farm:
        yield farm
