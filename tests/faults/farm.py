"""The farm as separate processes: the coordinator and one worker per stage, each killable on its own.

``FaultFarm`` runs ``talkfarm-admin db upgrade``, then ``uvicorn
coordinator.app:create_app`` and ``python -m pipeline.launch STAGE`` for each
stage, each with its own log file under ``root/logs``, against the services named
in ``FarmServices`` (private ones of this kit, or the machine's). A worker's pool
children can be killed apart from its main process. The farm is ready when
``/readyz`` answers 200 and every worker has a consumer on its queue and has
finished its warm-up (Celery logs `` ready.`` once its pool has started).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Mapping, Self, Sequence

import httpx
import redis
from amqp.exceptions import AMQPError
from kombu import Connection
from kombu.exceptions import OperationalError

from coordinator.background import heartbeat_check
from coordinator.farm import coordinator_command, metrics_env
from pipeline.stages import STAGE_NAMES
from tests.farm import delete_broker_objects, farm_env, settings_from
from tests.faults.ports import free_port
from tests.faults.process import ManagedProcess, is_alive, rss_bytes, wait_until
from tests.faults.service import Service

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FarmServices:
    """Where the farm's dependencies are. An empty ``database_url`` is SQLite in the farm's folder."""

    broker_url: str
    results_url: str
    cache_url: str
    database_url: str = ""

    def env(self) -> dict[str, str]:
        env = {"TALKFARM_BROKER__URL": self.broker_url, "TALKFARM_REDIS__RESULTS_URL": self.results_url,
               "TALKFARM_REDIS__CACHE_URL": self.cache_url}
        if self.database_url:
            env["TALKFARM_DATABASE_URL"] = self.database_url
        return env


class Coordinator(Service):
    """The API process (uvicorn, with ``coordinator.workers`` processes); it answers once ``/healthz`` does."""

    start_timeout = 60.0

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        settings = settings_from(dict(env))
        command = coordinator_command(settings, "127.0.0.1", self.port)
        env = {**env, **metrics_env(settings, fresh=False)}  # a restart keeps the counts so far
        super().__init__(ManagedProcess("coordinator", command, log_path, env=env, cwd=REPO, grace=20.0))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        return httpx.get(self.url + "/healthz", timeout=2).status_code == 200

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (httpx.HTTPError,)


class Background(Service):
    """``talkfarm-admin background`` (with ``coordinator.background = "separate"``): ready once its
    heartbeat in the results Redis says its event consumer is healthy."""

    start_timeout = 60.0

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.settings = settings_from(dict(env))
        command = [sys.executable, "-m", "coordinator.admin", "background"]
        env = {**env, **metrics_env(self.settings, fresh=False)}
        super().__init__(ManagedProcess("coordinator-background", command, log_path, env=env, cwd=REPO, grace=20.0))

    @property
    def url(self) -> str:
        return self.settings.redis.results_url

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            return heartbeat_check(self.settings, client) == "ok"
        finally:
            client.close()

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (redis.RedisError,)


class StageWorker(Service):
    """``python -m pipeline.launch STAGE``: the Celery main process and (prefork) its pool children."""

    start_timeout = 240.0  # real models load in the pool children

    def __init__(self, stage: str, env: Mapping[str, str], log_path: Path, queue: str,
                 args: Sequence[str] = ()) -> None:
        self.stage = stage
        self.queue = queue
        self.broker_url = env["TALKFARM_BROKER__URL"]
        self.metrics_port = free_port()  # each worker's own /metrics, /healthz, /readyz
        env = {**env, "TALKFARM_METRICS__PORT": str(self.metrics_port)}
        command = [sys.executable, "-m", "pipeline.launch", stage, *args]
        # SIGTERM to the main process only: a warm shutdown lets the pool finish its tasks.
        super().__init__(ManagedProcess(f"worker-{stage}", command, log_path, env=env, cwd=REPO, grace=30.0))

    @property
    def url(self) -> str:
        return self.broker_url

    @property
    def metrics_url(self) -> str:
        """The worker's own HTTP port (``/metrics``, ``/healthz``, ``/readyz``)."""
        return f"http://127.0.0.1:{self.metrics_port}"

    def answers(self) -> bool:
        return " ready." in self.process.log_text() and consumer_count(self.broker_url, self.queue) > 0

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (OperationalError, AMQPError)

    def restart_with(self, env: Mapping[str, str]) -> None:
        """Stop gracefully and start again with ``env`` added to its settings (a fixed release, say);
        returns once it is ready."""
        self.process.env = {**(self.process.env or {}), **env}
        self.restart()

    def pool(self) -> list[int]:
        """The pool children's process IDs (empty for the ``solo`` and ``threads`` pools)."""
        return self.process.children()

    def kill_pool_child(self, pid: int | None = None) -> int:
        """SIGKILL one pool child (``pid``, or the first), as a native crash or the OOM killer would;
        the main process stays and forks a replacement. Returns the killed child's ID."""
        children = self.pool()
        if not children:
            raise RuntimeError(f"{self.process.name} has no pool children")
        victim = pid if pid is not None else children[0]
        if victim not in children:
            raise ValueError(f"{victim} is not a pool child of {self.process.name}: {children}")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not is_alive(victim), 10, f"pool child {victim} to die", interval=0.05)
        return victim

    def wait_pool_replaced(self, old: Sequence[int], size: int = 1, timeout: float = 120.0) -> list[int]:
        """Wait until the pool has ``size`` children none of which is in ``old``; return them."""
        def replaced() -> list[int]:
            children = self.pool()
            return children if len(children) >= size and not set(children) & set(old) else []

        return wait_until(replaced, timeout, f"{self.process.name} to replace its pool", interval=0.1,
                          detail=self.process.log_tail)


def consumer_count(broker_url: str, queue: str) -> int:
    """Consumers on ``queue`` (0 when the queue does not exist yet)."""
    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).consumer_count)
        except Exception:
            return 0
        finally:
            try:
                channel.close()
            except Exception:
                pass


class FaultFarm:
    """The coordinator and the stage workers as separate processes, in ``root`` (data, logs).

    ``env`` adds settings (``TALKFARM_...``) for every process, e.g. stand-in backends;
    ``worker_args`` adds command-line arguments per stage (``["--concurrency", "2"]``).
    """

    def __init__(self, root: Path, services: FarmServices, env: Mapping[str, str] | None = None,
                 stages: Sequence[str] = STAGE_NAMES, worker_args: Mapping[str, Sequence[str]] | None = None) -> None:
        self.root = root
        self.services = services
        self.env = farm_env(root, services.cache_url, {**services.env(), **(env or {})})
        self.settings = settings_from(self.env)
        self.token = ""  # the farm's API key, made by ``upgrade_database``
        logs = root / "logs"
        self.coordinator = Coordinator(self.env, logs / "coordinator.log")
        self.background = Background(self.env, logs / "coordinator-background.log") \
            if self.settings.coordinator.background == "separate" else None
        self.workers = {stage: StageWorker(stage, self.env, logs / f"worker-{stage}.log",
                                           self.settings.queue_name(stage), (worker_args or {}).get(stage, ()))
                        for stage in stages}

    @property
    def url(self) -> str:
        """The coordinator's base URL."""
        return self.coordinator.url

    def client(self, timeout: float = 30.0, token: str | None = None) -> httpx.Client:
        """An HTTP client of the coordinator, sending the farm's API key (``token``: another; "" for none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def parts(self) -> list[Service]:
        """The coordinator (and its background process), then the workers."""
        background = [self.background] if self.background is not None else []
        return [self.coordinator, *background, *self.workers.values()]

    def admin(self, *args: str) -> str:
        """``talkfarm-admin ARGS`` with the farm's settings; its output."""
        done = subprocess.run([sys.executable, "-m", "coordinator.admin", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"talkfarm-admin {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def upgrade_database(self) -> None:
        """``talkfarm-admin db upgrade`` against the farm's database, and the farm's API key (``token``):
        an operator key of the ``vip`` tier (the first tier where ``TALKFARM_AUTH__TIERS`` has none)."""
        self.admin("db", "upgrade")
        if not self.token:
            tiers = self.settings.auth.tiers
            self.token = self.create_key("faults", "vip" if "vip" in tiers else next(iter(tiers)), operator=True)

    def create_key(self, name: str, tier: str, operator: bool = False) -> str:
        """A new API key (``talkfarm-admin keys create``); its token."""
        path = self.root / f"{name}-{secrets.token_hex(3)}.token"
        self.root.mkdir(parents=True, exist_ok=True)
        self.admin("keys", "create", "--name", name, "--tier", tier, "--token-file", str(path),
                   *(["--operator"] if operator else []))
        return path.read_text().strip()

    def start(self, timeout: float = 300.0) -> None:
        """Upgrade the database, start every process at once, then wait until the farm is ready."""
        self.upgrade_database()
        try:
            for service in self.parts():
                service.prepare()
                service.process.start()
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Wait for every worker (consumer and warm-up) and for ``/readyz`` to answer 200."""
        for worker in self.workers.values():
            worker.wait_ready(timeout)
        if self.background is not None:
            self.background.wait_ready(timeout)
        self.coordinator.wait_ready(timeout)
        wait_until(self.readyz_ok, timeout, "/readyz to answer 200", interval=0.2, ignore=(httpx.HTTPError,),
                   detail=self.coordinator.process.log_tail)

    def readyz(self) -> httpx.Response:
        """The coordinator's ``/readyz`` answer (raises ``httpx.HTTPError`` when it does not answer)."""
        return httpx.get(self.url + "/readyz", timeout=5)

    def readyz_ok(self) -> bool:
        """Whether ``/readyz`` answers 200."""
        return self.readyz().status_code == 200

    def memory(self) -> dict[str, int]:
        """Resident bytes of each process with its descendants (a worker with its pool)."""
        return {service.process.name: sum(rss_bytes(pid) for pid in service.process.tree())
                for service in self.parts()}

    def logs(self) -> str:
        """The tail of every process's log, for a failure message."""
        return "\n".join(service.process.log_tail() for service in self.parts())

    def stop(self) -> None:
        """Graceful: the coordinator first, then every worker."""
        for service in self.parts():
            service.stop()

    def kill(self) -> None:
        """SIGKILL every process of the farm."""
        for service in self.parts():
            service.kill()

    def close(self, delete_queues: bool = False) -> None:
        """Kill every process; ``delete_queues`` removes the farm's queues from a shared broker."""
        self.kill()
        if delete_queues:
            delete_broker_objects(self.settings)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
