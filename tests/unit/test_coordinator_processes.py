"""The coordinator's shape from its settings: uvicorn processes, the background process, its heartbeat."""

from __future__ import annotations

import json
import time

import pytest

from contracts.settings import CoordinatorSettings, Settings
from coordinator.background import heartbeat_check, heartbeat_key
from coordinator.farm import farm_commands

pytestmark = pytest.mark.unit


def settings(**coordinator: object) -> Settings:
    return Settings(coordinator=CoordinatorSettings(**coordinator))  # type: ignore[arg-type]


def test_one_process_with_everything_inline_by_default() -> None:
    commands = farm_commands(settings(), "127.0.0.1", 8000, flower=False, flower_port=5555)
    assert "--workers" not in commands["coordinator"]
    assert "coordinator-background" not in commands


def test_several_processes_and_the_background_apart() -> None:
    commands = farm_commands(settings(workers=3, background="separate"), "127.0.0.1", 8000, flower=False,
                             flower_port=5555)
    assert commands["coordinator"][-2:] == ["--workers", "3"]
    assert commands["coordinator-background"][-3:] == ["-m", "coordinator.admin", "background"]


class FakeRedis:
    def __init__(self, value: bytes | None) -> None:
        self.value = value

    def get(self, key: str) -> bytes | None:
        return self.value


def beat(at: float, healthy: bool = True, error: str | None = None) -> bytes:
    return json.dumps({"at": at, "healthy": healthy, "error": error}).encode()


def test_heartbeat_check() -> None:
    farm = settings(heartbeat_timeout_seconds=20)
    assert heartbeat_key(farm).endswith("talkfarm:background:heartbeat")
    assert heartbeat_check(farm, FakeRedis(beat(time.time() - 1))) == "ok"  # type: ignore[arg-type]
    assert heartbeat_check(farm, FakeRedis(None)).startswith("error: no background")  # type: ignore[arg-type]
    assert "too old" in heartbeat_check(farm, FakeRedis(beat(time.time() - 60)))  # type: ignore[arg-type]
    down = FakeRedis(beat(time.time(), False, "OperationalError: x"))
    assert heartbeat_check(farm, down) == "error: OperationalError: x"  # type: ignore[arg-type]
