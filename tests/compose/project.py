"""One Docker Compose project of the farm, driven from tests: the compose CLI, containers, health.

The project has its own name (``COMPOSE_PROJECT_NAME``, default ``talkfarm-smoke``), so its
containers, network and volumes never meet another farm's, and publishes the coordinator on
``127.0.0.1:TALKFARM_HTTP_PORT`` (default: a free port), so it never meets the host's services.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def compose_command() -> list[str]:
    """``TALKFARM_COMPOSE`` if set, else ``docker compose`` (v2) where it works, else ``docker-compose``."""
    override = os.environ.get("TALKFARM_COMPOSE")
    if override:
        return shlex.split(override)
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed (scripts/compose-smoke.sh "
                       "installs Debian's docker-compose)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, every: float = 1.0) -> T:
    """Poll ``condition`` until it returns something other than None; raise naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


@dataclass
class ComposeProject:
    root: Path
    name: str
    http_port: int
    command: list[str]

    @classmethod
    def from_env(cls, root: Path) -> "ComposeProject":
        return cls(root, os.environ.get("COMPOSE_PROJECT_NAME", "talkfarm-smoke"),
                   int(os.environ.get("TALKFARM_HTTP_PORT") or free_port()), compose_command())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "COMPOSE_PROJECT_NAME": self.name,
                "TALKFARM_HTTP_BIND": "127.0.0.1", "TALKFARM_HTTP_PORT": str(self.http_port)}

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        argv = [*self.command, *args]
        try:
            done = subprocess.run(argv, cwd=self.root, env=self._env(), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"`{shlex.join(argv)}` took longer than {timeout:.0f} s") from e
        if check and done.returncode != 0:
            raise RuntimeError(f"`{shlex.join(argv)}` failed ({done.returncode}): {done.stderr[-3000:]}")
        return done.stdout

    def exec(self, service: str, *argv: str, timeout: float = 60) -> str:
        return self.compose("exec", "-T", service, *argv, timeout=timeout)

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).split()
        if len(ids) != 1:
            raise RuntimeError(f"expected one container of {service}, found {len(ids)}")
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        out = subprocess.run(["docker", "inspect", self.container(service)], check=True, capture_output=True,
                             text=True, timeout=30).stdout
        info: dict[str, Any] = json.loads(out)[0]
        return info

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def wait_healthy(self, services: list[str], timeout: float) -> None:
        def all_healthy() -> bool | None:
            states = {s: self.health(s) for s in services}
            broken = {s: h for s, h in states.items() if h in ("unhealthy", "exited", "dead")}
            if broken:
                raise RuntimeError(f"services failed: {broken}\n{self.logs(*broken, tail=60)}")
            return True if all(h == "healthy" for h in states.values()) else None

        wait_for(all_healthy, timeout, f"{', '.join(services)} healthy", every=2.0)

    def published(self, service: str) -> list[str]:
        """``host_ip:host_port->container_port`` for each port ``service`` publishes on the host."""
        ports = self.inspect(service)["NetworkSettings"]["Ports"] or {}
        return [f"{b['HostIp']}:{b['HostPort']}->{port}" for port, bindings in ports.items() for b in bindings or []]

    def logs(self, *services: str, tail: int = 100) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False, timeout=60)
