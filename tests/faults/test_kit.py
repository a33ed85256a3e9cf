"""The fault kit itself: each service starts, answers, is killed, and comes back with its durable data."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bench.standins import STANDIN_ENV
from tests.conftest import DATA
from tests.faults.farm import FarmServices, FaultFarm
from tests.faults.jobs import await_jobs, check_video, stage_status, submit
from tests.faults.ports import port_open
from tests.faults.postgres import SERVER_URL, PostgresCluster, scratch_database
from tests.faults.process import is_alive, wait_until
from tests.faults.rabbitmq import RabbitNode
from tests.faults.redis_server import RedisServer

pytestmark = pytest.mark.integration


def publish_durably(url: str, queue: Queue, body: str) -> None:
    """Publish a persistent message and return once the broker has confirmed it (it is on disk)."""
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
                                delivery_mode=2, serializer="json")


def queued_bodies(url: str, queue: Queue) -> list[str]:
    """The queue's messages, read and left in place (rejected back)."""
    bodies = []
    with Connection(url) as conn:
        channel = conn.channel()
        bound = queue(channel)
        held = []
        while (message := bound.get(no_ack=False)) is not None:
            bodies.append(message.decode())
            held.append(message)
        for message in held:
            message.requeue()
    return bodies


def test_rabbit_node_keeps_a_durable_queue_through_a_restart_and_a_kill(rabbit: RabbitNode) -> None:
    queue = Queue("kit-durable", Exchange("kit", type="direct", durable=True), routing_key="kit", durable=True)
    assert rabbit.node.endswith("@localhost") and rabbit.port != 5672
    publish_durably(rabbit.url, queue, "before the restart")
    assert "kit-durable" in rabbit.ctl("list_queues", "name").stdout

    rabbit.restart()
    assert queued_bodies(rabbit.url, queue) == ["before the restart"]

    publish_durably(rabbit.url, queue, "before the kill")
    rabbit.kill()
    assert not port_open(rabbit.port)
    rabbit.start()
    assert queued_bodies(rabbit.url, queue) == ["before the restart", "before the kill"]


def test_append_only_redis_keeps_a_key_after_sigkill_and_a_cache_redis_does_not(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "aof", appendonly=True) as durable, \
            RedisServer(tmp_path / "lru", maxmemory="16mb") as cache:
        for server in (durable, cache):
            with server.client() as client:
                client.set("kit-key", "kept")
        # everysec: the write reaches the file within a second; SIGKILL does not lose what the OS has.
        wait_until(lambda: durable.in_append_only_file(b"kit-key"), 5, "the key to reach the append-only file")
        pid = durable.process.pid
        durable.kill()
        cache.kill()
        assert not is_alive(pid) and not port_open(durable.port)
        durable.start()
        cache.start()
        with durable.client() as client:
            assert client.get("kit-key") == b"kept"
        with cache.client() as client:
            assert client.get("kit-key") is None
            assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"


def test_postgres_cluster_keeps_a_committed_row_after_sigkill(postgres: PostgresCluster) -> None:
    url = postgres.create_database()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kit (v int)"))
            conn.execute(text("INSERT INTO kit VALUES (42)"))
        postgres.kill()
        with pytest.raises(OperationalError):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        postgres.start()  # crash recovery replays the log
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM kit")).scalars().all() == [42]
        postgres.restart()  # and a graceful one
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM kit")).scalar_one() == 1
    finally:
        engine.dispose()


def test_scratch_database_is_dropped_afterwards() -> None:
    with scratch_database() as url:
        engine = create_engine(url)
        held = engine.connect()  # left open: the drop must not wait for it
        name = held.execute(text("SELECT current_database()")).scalar_one()
        assert url.endswith(f"/{name}")
    held.invalidate()
    engine.dispose()
    server = create_engine(SERVER_URL)
    try:
        with server.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        assert found is None
    finally:
        server.dispose()


def test_farm_processes_are_killed_and_restarted_and_jobs_accounted_for(standin_farm: FaultFarm,
                                                                        tmp_path: Path) -> None:
    farm = standin_farm
    portrait = (DATA / "portrait.png").read_bytes()
    assert set(farm.memory()) == {"coordinator", "worker-asr", "worker-llm", "worker-tts", "worker-animation"}
    assert all(size > 10_000_000 for size in farm.memory().values())

    # A pool child killed: the main process forks another, which serves the next job.
    animation = farm.workers["animation"]
    old = animation.pool()
    animation.kill_pool_child()
    animation.wait_pool_replaced(old)

    # A worker that is away leaves its jobs unfinished: the report calls them stuck, not lost.
    farm.workers["tts"].kill()
    with farm.client() as client:
        waiting = submit(client, portrait, mode="speak", text="Is anybody there?")
        assert waiting.accepted, waiting.text
        report = await_jobs(client, [waiting.job_id, str(uuid.uuid4())], timeout=2)
        assert report.stuck == [waiting.job_id] and len(report.lost) == 1

        farm.workers["tts"].start()
        farm.coordinator.restart(hard=True)
        farm.wait_ready()
        chat = submit(client, portrait, mode="chat", text="What is a kit?")
        report = await_jobs(client, [waiting.job_id, chat.job_id], timeout=60)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 2}, report.summary()
        for job in report.succeeded():
            assert check_video(client, job, tmp_path).duration > 1.0


def test_standin_knobs_slow_a_task_and_crash_a_worker(tmp_path: Path, rabbit: RabbitNode,
                                                      results_redis: RedisServer, cache_redis: RedisServer) -> None:
    knobs = {"TALKFARM_STANDIN_DELAY": json.dumps({"animation": 3}),
             "TALKFARM_STANDIN_POISON": json.dumps({"tts": "poison"})}
    services = FarmServices(rabbit.url, results_redis.url, cache_redis.url)
    portrait = (DATA / "portrait.png").read_bytes()
    with FaultFarm(tmp_path / "farm", services, {**STANDIN_ENV, **knobs}) as farm, farm.client() as client:
        # Killed mid-render: the task goes back to the queue and the new pool child renders it.
        slow = submit(client, portrait, mode="speak", text="Slow but fine.", stream="false")
        wait_until(lambda: stage_status(client, slow.job_id, "animation") == "running", 30, "the render to start")
        animation = farm.workers["animation"]
        old = animation.pool()
        animation.kill_pool_child()
        animation.wait_pool_replaced(old)
        report = await_jobs(client, [slow.job_id], timeout=60)
        report.assert_settled()
        assert report.statuses() == {"succeeded": 1}, report.summary()
        check_video(client, report.jobs[slow.job_id], tmp_path)

        # A poisoned sentence kills the TTS pool child (what becomes of the job is issue 12's to settle).
        tts = farm.workers["tts"]
        before = tts.pool()
        assert submit(client, portrait, mode="speak", text="A poison pill.").accepted
        tts.wait_pool_replaced(before, timeout=30)
