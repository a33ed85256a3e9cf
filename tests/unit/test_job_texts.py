"""A job's texts travel as artifacts: the payload and the events name them by key, and they read back the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.artifacts import ArtifactNotFound, ArtifactStore
from contracts.events import TEXTS, resolve_texts, segment_summary, text_keys
from contracts.job_texts import JobContext, JobTexts, read_text, upgrade_legacy_payload
from contracts.payload import JobPayload, Turn

pytestmark = pytest.mark.unit

PORTRAIT = "ab" * 32 + ".png"
QUESTION = "Where did my grandmother hide the brass key, Ottoline?"


def payload(**fields: object) -> JobPayload:
    return JobPayload.model_validate({"job_id": "j", "session_id": "s", "mode": "speak", "plan": ["tts", "animation"],
                                      "portrait_key": PORTRAIT, **fields})


def context_of(store: ArtifactStore, text: str | None = QUESTION) -> tuple[str, JobTexts]:
    context = JobContext.new(text, [Turn(role="user", content="Hi."), Turn(role="assistant", content="Hello.")],
                             "You are Ann.")
    key = JobTexts.write_context(store, context)
    return key, JobTexts(store, key)


def test_the_payload_names_the_texts_and_they_read_back(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    context_key, texts = context_of(store)
    transcript_key, reply_key = texts.put("What is this?"), texts.put("It is a key.")
    job = payload(mode="chat", plan=["llm", "tts", "animation"], context_key=context_key,
                  transcript_key=transcript_key, reply_key=reply_key)
    wire = json.dumps(job.model_dump(mode="json"))
    assert QUESTION not in wire and "It is a key." not in wire and "You are Ann." not in wire and "Hello." not in wire
    again = JobPayload.model_validate(json.loads(wire))
    read = JobTexts(store, again.context_key)
    assert read.context.text == QUESTION and read.context.system_prompt == "You are Ann."
    assert [t.content for t in read.context.history] == ["Hi.", "Hello."]
    assert read.read(again.transcript_key) == "What is this?" and read.read(again.reply_key) == "It is a key."
    assert read.read(None) is None


def test_a_payload_refuses_texts_and_keys_that_are_not_keys() -> None:
    with pytest.raises(ValueError):
        payload(text="Hello.")  # the previous version's field: a message never carries the words
    for field in ("context_key", "transcript_key", "reply_key", "segment_text_key"):
        with pytest.raises(ValueError):
            payload(**{field: "Hello there."})


def test_keys_are_salted_per_job_and_stable_within_one(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    _, first = context_of(store)
    _, second = context_of(store)
    assert first.put("Yes.") == first.put("Yes.")  # a redone task writes the same file
    assert first.put("Yes.") != second.put("Yes.")  # another job's "Yes." is another file
    # The key of a short text is not its bare hash: it cannot be looked up from a guess of the words.
    assert first.put("Yes.") not in {store.key_of(b"Yes.", "json"), store.key_of(json.dumps("Yes.").encode(), "json")}
    assert first.context.salt and first.context.salt != second.context.salt
    assert read_text(store, first.put("Yes.")) == "Yes."


def test_the_words_spoken_are_the_segment_the_reply_or_the_text(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    context_key, texts = context_of(store, "Say this.")
    assert texts.words(payload(context_key=context_key)) == "Say this."
    reply = texts.put("The answer.")
    assert texts.words(payload(mode="chat", context_key=context_key, reply_key=reply)) == "The answer."
    two = texts.put("Two.")
    assert texts.words(payload(mode="chat", context_key=context_key, reply_key=reply, segment=1,
                               segment_text_key=two)) == "Two."
    assert JobTexts(store, None).words(payload(mode="lipsync", plan=["animation"])) is None


def test_a_text_artifact_that_is_gone_or_not_a_text(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactNotFound):
        read_text(store, "cd" * 32 + ".json")
    with pytest.raises(ValueError):
        read_text(store, store.put_bytes(b'{"kind": "phoneme"}', "json").key)


def test_events_name_texts_and_the_coordinator_fills_them_in(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    _, texts = context_of(store)
    data = {TEXTS: {"reply": texts.put("**Hi!**"), "spoken_reply": texts.put("Hi!"), "transcript": None},
            "faq_cache": False}
    assert "Hi!" not in json.dumps(data)
    resolved = resolve_texts(data, lambda key: read_text(store, key))
    assert resolved["reply"] == "**Hi!**" and resolved["spoken_reply"] == "Hi!" and resolved["transcript"] is None
    assert resolved[TEXTS] == data[TEXTS] and resolved["faq_cache"] is False  # the keys stay (erasure finds them)
    # An older worker's event has its texts in their fields: applied as it is.
    assert resolve_texts({"reply": "Hi."}, lambda key: "never read") == {"reply": "Hi."}
    assert text_keys({TEXTS: "not a mapping"}) == {}


def test_a_segments_event_prefixes_the_text_fields_it_names() -> None:
    summary = {"speech_key": "k", "seconds": 1.0, TEXTS: {"spoken_text": "t"}}
    assert segment_summary(summary) == {"segment_speech_key": "k", "segment_seconds": 1.0,
                                        TEXTS: {"segment_spoken_text": "t"}}


def test_a_payload_of_the_previous_version_has_its_texts_stored_on_arrival(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    old = {"job_id": "j", "session_id": "s", "mode": "chat", "plan": ["tts", "animation"], "portrait_key": PORTRAIT,
           "text": QUESTION, "history": [{"role": "user", "content": "Hi."}], "system_prompt": "You are Ann.",
           "transcript": None, "reply": "Under the stairs.", "segment": 1, "segment_text": "Under the stairs."}
    job = JobPayload.model_validate(upgrade_legacy_payload(old, store))
    texts = JobTexts(store, job.context_key)
    assert texts.context.text == QUESTION and texts.context.system_prompt == "You are Ann."
    assert texts.context.history == [Turn(role="user", content="Hi.")]
    assert job.transcript_key is None and texts.read(job.reply_key) == "Under the stairs."
    assert texts.words(job) == "Under the stairs." and job.segment_text_key == job.reply_key
    # A current payload is left alone: nothing read, nothing written.
    current = payload().model_dump(mode="json")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert upgrade_legacy_payload(current, ArtifactStore(tmp_path)) is current
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
