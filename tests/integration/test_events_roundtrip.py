"""Worker events travel through RabbitMQ to the coordinator's consumer and into the store."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from contracts.settings import Settings
from coordinator.events import EventConsumer, JobWatchers
from coordinator.store import migrate
from coordinator.store.models import JobRow
from coordinator.store.repo import JobStore, make_engine
from pipeline.events import JobEvent, publish_event
from tests.farm import BROKER_URL, delete_broker_objects

pytestmark = pytest.mark.integration


def test_events_are_persisted_and_wait_in_the_broker(tmp_path, monkeypatch):
    settings = Settings(queue_prefix=f"test-{uuid.uuid4().hex[:8]}-", data_dir=tmp_path,
                        broker={"url": BROKER_URL})
    monkeypatch.setattr("pipeline.app.app.conf.broker_url", BROKER_URL)
    store = JobStore(make_engine(settings.db_url))
    migrate.upgrade(store.engine)
    job_id = str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="speak",
                            portrait_key="d" * 64 + ".png"), ["tts", "animation"], [])
    try:
        # Published before any coordinator consumes: the durable queue keeps them.
        publish_event(JobEvent(job_id=job_id, session_id="s", stage="tts", kind="started"), settings)
        publish_event(JobEvent(job_id=job_id, session_id="s", stage="tts", kind="finished", seconds=0.2,
                               data={"speech_seconds": 2.0}), settings)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        consumer = EventConsumer(settings, store, JobWatchers(loop))
        consumer.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and store.get_job(job_id)[1][0].status != "succeeded":
            time.sleep(0.1)
        consumer.stop()
        loop.call_soon_threadsafe(loop.stop)
        job, stages = store.get_job(job_id)
        assert stages[0].status == "succeeded" and stages[0].seconds == 0.2
        assert job.speech_seconds == 2.0 and job.status == "running"
    finally:
        delete_broker_objects(settings)
