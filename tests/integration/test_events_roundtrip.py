"""Worker events travel through RabbitMQ to the coordinator's consumer and into the store; the texts they name
by artifact key are read into the job and the stored events."""

from __future__ import annotations

import time
import uuid

import pytest

from contracts.artifacts import ArtifactStore
from contracts.events import TEXTS
from contracts.job_texts import JobContext, JobTexts
from contracts.settings import Settings
from coordinator.events import EventConsumer
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
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="chat",
                            portrait_key="d" * 64 + ".png"), ["llm", "tts", "animation"], [])
    artifacts = ArtifactStore(settings.artifact_dir)
    texts = JobTexts(artifacts, JobTexts.write_context(artifacts, JobContext.new("Which moon is the largest?")))
    reply, gone = texts.put("Ganymede, **by far**."), texts.put("A text whose session was deleted.")
    artifacts.remove(gone)
    try:
        # Published before any coordinator consumes: the durable queue keeps them.
        publish_event(JobEvent(job_id=job_id, session_id="s", stage="llm", kind="finished", seconds=0.1,
                               data={TEXTS: {"reply": reply, "spoken_reply": gone}}), settings)
        publish_event(JobEvent(job_id=job_id, session_id="s", stage="tts", kind="started"), settings)
        publish_event(JobEvent(job_id=job_id, session_id="s", stage="tts", kind="finished", seconds=0.2,
                               data={"speech_seconds": 2.0}), settings)
        consumer = EventConsumer(settings, store, artifacts, lambda job_id: None)
        consumer.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and store.get_job(job_id)[1][1].status != "succeeded":
            time.sleep(0.1)
        consumer.stop()
        job, stages = store.get_job(job_id)
        assert stages[1].status == "succeeded" and stages[1].seconds == 0.2
        assert job.speech_seconds == 2.0 and job.status == "running"
        # The reply was read from its artifact; a text that is gone leaves its field empty, the event applied.
        assert job.reply == "Ganymede, **by far**." and job.spoken_reply is None and stages[0].status == "succeeded"
        [finished] = store.events_of_kind(job_id, "finished")[:1]
        assert finished.data["reply"] == "Ganymede, **by far**." and finished.data[TEXTS]["reply"] == reply
    finally:
        delete_broker_objects(settings)
