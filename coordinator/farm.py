"""Running the whole farm on one machine, in the foreground (``talkfarm-admin farm``).

Starts the coordinator (``coordinator.workers`` uvicorn processes, and with
``coordinator.background = "separate"`` its background process), one worker per
stage and Flower as child processes in their own process groups, prefixes their
output, prints the URLs once the
coordinator is ready, and on Ctrl-C (or SIGTERM) stops them all: SIGTERM first
(Celery finishes the task in hand), SIGKILL after a grace period. If any child
dies, the rest are stopped and the exit status is non-zero.

When the coordinator is more than one process (several HTTP processes, or its
background process apart), ``metrics_env`` gives them one Prometheus
multiprocess folder, so that ``/metrics`` sums the counts of all of them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from contracts.settings import Settings
from pipeline.stages import STAGE_NAMES

GRACE_SECONDS = 30.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def farm_commands(settings: Settings, host: str, port: int, flower: bool,
                  flower_port: int, metrics_port: int | None = None) -> dict[str, list[str]]:
    """The command of each process; worker ``i`` (in stage order) serves its metrics on ``metrics_port + i``
    (the ``metrics.port`` setting when None; 0: each picks a free port)."""
    py = sys.executable
    commands = {"coordinator": coordinator_command(settings, host, port)}
    if settings.coordinator.background == "separate":
        commands["coordinator-background"] = [py, "-m", "coordinator.admin", "background"]
    base = settings.metrics.port if metrics_port is None else metrics_port
    for index, stage in enumerate(STAGE_NAMES):
        commands[f"worker-{stage}"] = [py, "-m", "pipeline.launch", stage,
                                       "--metrics-port", str(base + index if base else 0)]
    if flower:
        commands["flower"] = [py, "-m", "celery", "-A", "pipeline.app", "flower",
                              f"--port={flower_port}", f"--address={host}",
                              f"--broker_api={settings.broker.management_url}"]
    return commands


def metrics_env(settings: Settings, fresh: bool = True) -> dict[str, str]:
    """``PROMETHEUS_MULTIPROC_DIR`` for a coordinator of several processes (emptied when ``fresh``), else nothing.

    Each process then writes its counters and histograms to files in that folder and ``/metrics`` adds them
    up (``prometheus_client``'s multiprocess mode); one process alone keeps the ordinary registry.
    """
    coordinator = settings.coordinator
    if coordinator.workers <= 1 and coordinator.background != "separate":
        return {}
    folder = Path(settings.data_dir) / "prometheus"
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}


def coordinator_command(settings: Settings, host: str, port: int) -> list[str]:
    """uvicorn serving the API with ``coordinator.workers`` processes."""
    command = [sys.executable, "-m", "uvicorn", "coordinator.app:create_app", "--factory",
               "--host", host, "--port", str(port), "--timeout-graceful-shutdown", "5",
               "--timeout-keep-alive", str(settings.coordinator.keep_alive_seconds)]
    if settings.coordinator.workers > 1:
        command += ["--workers", str(settings.coordinator.workers)]
    return command


def _relay(name: str, stream: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>18} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def _wait_ready(url: str, children: list[Child], timeout: float = 180.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.process.poll() is not None for c in children):
            return False
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def run_farm(settings: Settings, host: str, port: int, flower: bool, flower_port: int,
             metrics_port: int | None = None, api_key_file: str | None = None) -> int:
    password = settings.flower.password.get_secret_value() or secrets.token_urlsafe(12)
    # Flower reads its login from the environment (not the command line, which `ps` shows).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FLOWER_BASIC_AUTH": f"{settings.flower.user}:{password}"}
    coordinator_env = {**env, **metrics_env(settings)}  # the coordinator's processes only, not the workers'
    children: list[Child] = []
    stopping = threading.Event()

    def on_signal(signum: int, _: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for name, command in farm_commands(settings, host, port, flower, flower_port, metrics_port).items():
        child_env = coordinator_env if name.startswith("coordinator") else env
        process = subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        children.append(Child(name, process))
        assert process.stdout is not None
        threading.Thread(target=_relay, args=(name, process.stdout), daemon=True).start()

    status = 0
    if _wait_ready(f"http://{host}:{port}/readyz", children):
        print(f"\ntalkfarm is up:\n  API and page   http://{host}:{port}/\n"
              f"  OpenAPI docs   http://{host}:{port}/docs\n  metrics        http://{host}:{port}/metrics")
        base = settings.metrics.port if metrics_port is None else metrics_port
        if base:
            print(f"  worker metrics http://{host}:{base}/metrics … :{base + len(STAGE_NAMES) - 1} "
                  f"({', '.join(STAGE_NAMES)})")
        if flower:
            shown = "(TALKFARM_FLOWER__PASSWORD)" if settings.flower.password.get_secret_value() else password
            print(f"  Flower         http://{host}:{flower_port}/  (user {settings.flower.user}, password {shown})")
        if api_key_file:
            token = Path(api_key_file).read_text().strip()
            print(f"  API key        {token}\n                 (in {api_key_file}; curl -H 'Authorization: Bearer …', "
                  f"or export TALKFARM_API_KEY for the CLI)")
        print("Press Ctrl-C to stop.\n", flush=True)
    elif not stopping.is_set():
        print("talkfarm: the coordinator did not become ready; stopping", file=sys.stderr)
        stopping.set()
        status = 1
    while not stopping.wait(0.5):
        dead = [c for c in children if c.process.poll() is not None]
        if dead:
            print(f"talkfarm: {dead[0].name} exited with {dead[0].process.returncode}; stopping",
                  file=sys.stderr)
            status = 1
            break
    print("talkfarm: stopping…", flush=True)
    _stop(children)
    return status
