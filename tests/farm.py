"""A real farm for tests: RabbitMQ and Redis of the machine, a private LRU Redis for the
video cache, SQLite in a temporary folder, and ``talkfarm-admin farm`` as a subprocess.

Queues and exchanges get a unique prefix so that tests never touch another farm's
messages; they are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import redis
from kombu import Connection, Queue

from contracts.settings import Settings
from pipeline.stages import STAGE_NAMES as STAGES

BROKER_URL = os.environ.get("TALKFARM_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
RESULTS_URL = os.environ.get("TALKFARM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free now (worker metrics ports)."""
    for _ in range(50):
        base = free_port()
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"found no {count} consecutive free ports")


@dataclass
class RedisInstance:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_lru_redis(maxmemory: str = "64mb") -> RedisInstance:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory", maxmemory, "--maxmemory-policy", "allkeys-lru"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return RedisInstance(port, process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@dataclass
class Farm:
    url: str
    settings: Settings
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int = 0  # the first worker's; the others follow in stage order
    # API keys made for the tests: an operator key of the vip tier, and a key of another owner.
    token: str = ""
    other_token: str = ""

    @property
    def worker_metrics(self) -> dict[str, str]:
        """Stage → URL of its worker's /metrics."""
        return {stage: f"http://127.0.0.1:{self.metrics_port + i}/metrics" for i, stage in enumerate(STAGES)}

    def client(self, timeout: float = 60.0, token: str | None = None) -> httpx.Client:
        """A client sending the tests' API key (``token``: another one; "" for none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def wait_job(self, job_id: str, timeout: float = 300.0, token: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        with self.client(token=token) as client:
            while time.monotonic() < deadline:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    return job
                time.sleep(0.25)
        raise TimeoutError(f"job {job_id} did not finish in {timeout} s; farm log: {self.log_path}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def farm_env(tmp: Path, cache_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TALKFARM_")}
    env.update({
        "TALKFARM_DATA_DIR": str(tmp / "data"),
        "TALKFARM_QUEUE_PREFIX": prefix,
        "TALKFARM_BROKER__URL": BROKER_URL,
        "TALKFARM_REDIS__RESULTS_URL": RESULTS_URL,
        "TALKFARM_REDIS__CACHE_URL": cache_url,
        "PYTHONUNBUFFERED": "1",
    })
    if os.environ.get("TALKFARM_MODEL_DIR"):
        env["TALKFARM_MODEL_DIR"] = os.environ["TALKFARM_MODEL_DIR"]
    env.update(extra or {})
    return env


def settings_from(env: dict[str, str]) -> Settings:
    old = dict(os.environ)
    try:
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


def start_farm(tmp: Path, cache_url: str, extra: dict[str, str] | None = None) -> Farm:
    env = farm_env(tmp, cache_url, extra)
    admin = [sys.executable, "-m", "coordinator.admin"]
    subprocess.run(admin + ["db", "upgrade"], env=env, check=True, capture_output=True)
    tokens = []
    for name, tier, operator in (("tests", "vip", ["--operator"]), ("someone-else", "standard", [])):
        path = tmp / f"{name}.token"
        subprocess.run(admin + ["keys", "create", "--name", name, "--tier", tier, "--token-file", str(path),
                                *operator], env=env, check=True, capture_output=True)
        tokens.append(path.read_text().strip())
    port = free_port()
    metrics_port = free_ports(len(STAGES))
    log_path = tmp / "farm.log"
    log = log_path.open("wb")
    process = subprocess.Popen(admin + ["farm", "--no-flower", "--port", str(port),
                                        "--metrics-port", str(metrics_port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    farm = Farm(f"http://127.0.0.1:{port}", settings_from(env), env, process, log_path, metrics_port,
                token=tokens[0], other_token=tokens[1])
    wait_ready(farm)
    return farm


def wait_ready(farm: Farm, timeout: float = 240.0) -> None:
    """Wait for the coordinator and for a consumer on every stage queue (models loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if farm.process.poll() is not None:
            raise RuntimeError(f"the farm exited early:\n{farm.log()[-5000:]}")
        if consumers_ready(farm.settings):
            try:
                if httpx.get(farm.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    stop_farm(farm)
    raise TimeoutError(f"the farm did not become ready:\n{farm.log()[-5000:]}")


def consumers_ready(settings: Settings) -> bool:
    with Connection(settings.broker.url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            for stage in STAGES:
                if channel.queue_declare(settings.queue_name(stage), passive=True).consumer_count < 1:
                    return False
        except Exception:
            return False
        finally:
            try:
                channel.close()
            except Exception:
                pass
    # A consumer exists once the main process is up; models load in the child right after.
    log = Path(settings.data_dir.parent / "farm.log").read_text(errors="replace")
    return log.count(" ready.") >= len(STAGES)


def stop_farm(farm: Farm) -> None:
    if farm.process.poll() is None:
        os.killpg(farm.process.pid, signal.SIGINT)
        try:
            farm.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(farm.process.pid, signal.SIGKILL)
            farm.process.wait()
    delete_broker_objects(farm.settings)


def delete_broker_objects(settings: Settings) -> None:
    with Connection(settings.broker.url, connect_timeout=5) as conn:
        channel = conn.channel()
        for stage in STAGES:
            channel.queue_delete(settings.queue_name(stage))
            channel.queue_delete(settings.queue_name(f"{stage}.dead"))
        channel.queue_delete(settings.queue_name(settings.broker.events_queue))
        channel.exchange_delete(settings.queue_name("talkfarm.stages"))
        channel.exchange_delete(settings.queue_name(settings.broker.dead_letter_exchange))
        channel.exchange_delete(settings.queue_name(settings.broker.events_exchange))


def create_key(farm: Farm, name: str, tier: str, operator: bool = False) -> str:
    """A new API key of the farm's (``talkfarm-admin keys create``); its token."""
    path = farm.log_path.parent / f"{name}-{uuid.uuid4().hex[:6]}.token"
    subprocess.run([sys.executable, "-m", "coordinator.admin", "keys", "create", "--name", name, "--tier", tier,
                    "--token-file", str(path), *(["--operator"] if operator else [])],
                   env=farm.env, check=True, capture_output=True)
    return path.read_text().strip()


def admin(farm: Farm, *args: str) -> str:
    """Run ``talkfarm-admin`` against the farm's settings; its output."""
    done = subprocess.run([sys.executable, "-m", "coordinator.admin", *args], env=farm.env, check=True,
                          capture_output=True, text=True)
    return done.stdout


def start_coordinator(tmp: Path, cache_url: str, extra: dict[str, str] | None = None) -> Farm:
    """The coordinator alone, no worker: its jobs wait in their queues (declared here, as a worker would)."""
    from pipeline.app import declare_queues

    env = farm_env(tmp, cache_url, extra)
    admin_command = [sys.executable, "-m", "coordinator.admin"]
    subprocess.run(admin_command + ["db", "upgrade"], env=env, check=True, capture_output=True)
    settings = settings_from(env)
    declare_queues(settings)
    port = free_port()
    log_path = tmp / "coordinator.log"
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "coordinator.app:create_app", "--factory",
                                "--port", str(port)], env=env, stdout=log_path.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    farm = Farm(f"http://127.0.0.1:{port}", settings, env, process, log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the coordinator exited:\n{farm.log()[-3000:]}")
        try:
            if httpx.get(farm.url + "/readyz", timeout=2).status_code == 200:
                return farm
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_farm(farm)
            raise TimeoutError(f"the coordinator did not become ready:\n{farm.log()[-3000:]}")
        time.sleep(0.2)


def farm_fixture(tmp: Path, extra: dict[str, str] | None = None) -> Iterator[Farm]:
    redis = start_lru_redis()
    farm = start_farm(tmp, redis.url, extra)
    try:
        yield farm
    finally:
        stop_farm(farm)
        redis.process.terminate()
        redis.process.wait()


@dataclass(frozen=True)
class Seen:
    """One message as the broker holds it: the exchange it went through, its routing key, headers and body."""

    exchange: str
    routing_key: str
    headers: dict[str, Any]
    body: bytes

    @property
    def text(self) -> str:
        """Everything the message shows, non-ASCII unescaped (JSON bodies are decoded and dumped again)."""
        shown = [self.body.decode("utf-8", "replace"), json.dumps(self.headers, default=str, ensure_ascii=False)]
        try:
            shown.append(json.dumps(json.loads(self.body), ensure_ascii=False))
        except ValueError:
            pass
        return "\n".join(shown)


class MessageSpy:
    """A copy of every message published to the farm's exchanges (stage tasks, dead letters, worker events to
    the coordinator) and to Celery's task-event exchange (what Flower shows), kept in a queue of the test's own
    while the spy is open: what RabbitMQ's management UI would show, and what it writes to disk."""

    def __init__(self, settings: Settings) -> None:
        from celery.events.event import event_exchange

        from pipeline.app import dead_letter_exchange, stages_exchange
        from pipeline.events import events_exchange

        self._bindings = [(stages_exchange(settings), stage) for stage in STAGES]
        self._bindings += [(dead_letter_exchange(settings), stage) for stage in STAGES]
        self._bindings += [(events_exchange(settings), "#"), (event_exchange, "#")]
        self._url = settings.broker.url
        self._name = settings.queue_name(f"spy-{uuid.uuid4().hex[:8]}")
        self._conn: Connection | None = None
        self._queue: Queue | None = None
        self.seen: list[Seen] = []

    def __enter__(self) -> MessageSpy:
        self._conn = Connection(self._url, connect_timeout=5)
        channel = self._conn.channel()
        self._queue = Queue(self._name, exclusive=True, auto_delete=True, channel=channel)
        self._queue.declare()
        for exchange, routing_key in self._bindings:
            exchange(channel).declare()  # as the farm declares it; it may not have published there yet
            self._queue.bind_to(exchange=exchange.name, routing_key=routing_key)
        return self

    def collect(self) -> list[Seen]:
        """The messages copied since the last call (added to ``seen`` too)."""
        assert self._queue is not None
        taken = []
        while (message := self._queue.get(no_ack=True)) is not None:
            info, body = message.delivery_info, message.body
            taken.append(Seen(str(info.get("exchange", "")), str(info.get("routing_key", "")),
                              dict(message.headers or {}), body.encode() if isinstance(body, str) else bytes(body)))
        self.seen += taken
        return taken

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            self._conn.release()  # the exclusive queue goes with its connection


def results_redis_entries(url: str = RESULTS_URL) -> Iterator[tuple[str, str]]:
    """Every key of the results Redis with what it holds, as text (strings, hashes, lists, sets, sorted sets)."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            values: list[Any] = [client.get(key)]
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            continue
        yield key.decode("utf-8", "replace"), " ".join(
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values if v is not None)


@contextmanager
def coordinator_alone(tmp: Path, extra: dict[str, str] | None = None, key: tuple[str, str] | None = None
                      ) -> Iterator[Farm]:
    """A coordinator with no workers (``start_coordinator``) on a private LRU cache Redis, with an API key of
    ``key`` = (name, tier) as its ``token`` when given; stopped, and its broker objects deleted, at the end."""
    cache = start_lru_redis()
    farm = start_coordinator(tmp, cache.url, extra)
    try:
        if key is not None:
            farm.token = create_key(farm, *key)
        yield farm
    finally:
        farm.process.kill()
        farm.process.wait()
        delete_broker_objects(farm.settings)
        cache.process.terminate()
        cache.process.wait()
