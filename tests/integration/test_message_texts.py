"""What the coordinator publishes names the job's texts by artifact key only: real RabbitMQ message bodies.

A coordinator with no worker: its jobs' first messages wait in their queues, and a spy
queue bound to the farm's exchanges holds a copy of every message. The question, the
persona and a streamed ``speak`` job's sentences are in none of them (bodies nor
headers), nor in the job store's record of what to publish; the keys the messages carry
read back to exactly those texts, and the API answers with them as before.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from contracts.artifacts import ArtifactStore
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from coordinator.store.repo import JobStore, make_engine
from tests.farm import Farm, MessageSpy, coordinator_alone

pytestmark = pytest.mark.integration
PORTRAIT = (Path(__file__).parents[1] / "data" / "portrait.png").read_bytes()


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    with coordinator_alone(tmp_path_factory.mktemp("coordinator"), {"TALKFARM_STREAM_REPLIES": "true"},
                           key=("texts", "standard")) as farm:
        yield farm


def test_the_first_messages_of_a_job_carry_keys_and_no_text(coordinator: Farm) -> None:
    n = uuid.uuid4().int % 10_000
    question = f"Did Ottoline bury the brass key under the quince tree, number {n}?"
    persona = f"You are Captain Marguerite of the airship Linden {n}."
    sentences = [f"Marguerite keeps bees on the roof of number {n}.", "The honey tastes of linden and smoke."]
    with MessageSpy(coordinator.settings) as spy, coordinator.client() as client:
        session = client.post("/v1/sessions", json={"system_prompt": persona}).json()["session_id"]
        chat = client.post("/v1/jobs", data={"mode": "chat", "text": question, "session_id": session},
                           files={"portrait": ("p.png", PORTRAIT)})
        speak = client.post("/v1/jobs", data={"mode": "speak", "text": " ".join(sentences)},
                            files={"portrait": ("p.png", PORTRAIT)})
        assert chat.status_code == speak.status_code == 202, (chat.text, speak.text)
        chat_id, speak_id = chat.json()["job_id"], speak.json()["job_id"]
        # The API shows the texts as before.
        assert client.get(f"/v1/jobs/{chat_id}").json()["text"] == question
        assert client.get(f"/v1/jobs/{speak_id}").json()["text"] == " ".join(sentences)
        seen = spy.collect()

    # The stage messages, and the task-sent events that Flower shows of them.
    assert {m.exchange for m in seen} >= {coordinator.settings.queue_name("talkfarm.stages"), "celeryev"}
    tasks: dict[str, list] = {m.routing_key: [] for m in seen}
    for message in seen:
        tasks[message.routing_key].append(message)
        for text in (question, persona, *sentences):
            assert text not in message.text and text[:24] not in message.text, (message.routing_key, text)
    payloads = {stage: [JobPayload.model_validate(json.loads(m.body)[0][0]) for m in tasks.get(stage, [])]
                for stage in ("llm", "tts")}
    [llm] = [p for p in payloads["llm"] if p.job_id == chat_id]
    segments = sorted((p for p in payloads["tts"] if p.job_id == speak_id), key=lambda p: p.segment or 0)
    assert [p.segment for p in segments] == [0, 1]

    # What the keys name: exactly the texts.
    artifacts = ArtifactStore(coordinator.settings.artifact_dir)
    chat_texts = JobTexts(artifacts, llm.context_key)
    assert (chat_texts.context.text, chat_texts.context.system_prompt) == (question, persona)
    speak_texts = JobTexts(artifacts, segments[0].context_key)
    assert [speak_texts.read(p.segment_text_key) for p in segments] == sentences

    # The job store keeps what to publish (the sweeper's copy) by key too.
    store = JobStore(make_engine(coordinator.settings.db_url))
    for job_id in (chat_id, speak_id):
        found = store.get_job(job_id)
        assert found is not None and found[0].dispatch is not None
        kept = json.dumps(found[0].dispatch, ensure_ascii=False)
        assert all(text not in kept for text in (question, persona, *sentences))
