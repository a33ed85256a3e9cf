"""The door, on the real farm: API keys, what each key may see, quotas, idempotency, deletion, limits on uploads.

The session farm (tests/conftest.py) has the tests' vip operator key, another owner's
standard key, and a ``tiny`` tier whose every quota a few requests reach.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Iterator

import httpx
import pytest
from PIL import Image

from contracts.artifacts import ArtifactStore
from tests.farm import Farm, MessageSpy, Seen, admin, create_key, results_redis_entries

pytestmark = pytest.mark.e2e


def speak(client: httpx.Client, portrait: bytes, text: str = "Hello there.", **form: str) -> httpx.Response:
    return client.post("/v1/jobs", data={"mode": "speak", "text": text, **form},
                       files={"portrait": ("portrait.png", portrait)})


def error(answer: httpx.Response) -> str:
    body = answer.json()
    assert set(body) == {"code", "message"} and body["message"], body
    return str(body["code"])


@pytest.fixture(scope="module")
def job(farm: Farm, portrait_bytes: bytes) -> dict:
    """A finished streamed speak job of the tests' key, in a session of its own, with an avatar."""
    with farm.client() as client:
        avatar = client.post("/v1/avatars", files={"portrait": ("p.png", portrait_bytes)}).json()["avatar_id"]
        session = client.post("/v1/sessions", json={"avatar": avatar}).json()["session_id"]
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Owned by one key. Seen by one key.",
                                               "session_id": session})
        assert answer.status_code == 202, answer.text
    done = farm.wait_job(answer.json()["job_id"])
    assert done["status"] == "succeeded", done["error"]
    return {**done, "avatar_id": avatar}


def test_no_key_a_wrong_key_and_a_revoked_key_are_unauthorized(farm: Farm, job: dict) -> None:
    revoked = create_key(farm, "soon-revoked", "standard")
    with farm.client(token=revoked) as client:
        assert client.get("/v1/voices").status_code == 200
    admin(farm, "keys", "revoke", "soon-revoked")
    time.sleep(farm.settings.auth.key_cache_seconds + 0.2)  # the coordinator trusts a looked-up key this long
    for token in ("", "tf_not-a-key", revoked):
        with farm.client(token=token) as client:
            for answer in (client.get("/v1/voices"), client.get(f"/v1/jobs/{job['job_id']}"),
                           client.post("/v1/sessions", json={}), client.get(f"/v1/jobs/{job['job_id']}/video")):
                assert answer.status_code == 401, (token, answer.request.url)
                assert error(answer) == "unauthorized"
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_keys_things_answer_404_like_unknown_ids(farm: Farm, job: dict) -> None:
    job_id, session, avatar = job["job_id"], job["session_id"], job["avatar_id"]
    paths = {f"/v1/jobs/{job_id}": "job_not_found", f"/v1/jobs/{job_id}/events": "job_not_found",
             f"/v1/jobs/{job_id}/video": "job_not_found", f"/v1/jobs/{job_id}/stream.m3u8": "job_not_found",
             f"/v1/jobs/{job_id}/segments/0.ts": "job_not_found", f"/v1/sessions/{session}": "session_not_found",
             f"/v1/avatars/{avatar}": "avatar_not_found", f"/v1/avatars/{avatar}/portrait": "avatar_not_found"}
    with farm.client(token=farm.other_token) as other, farm.client() as owner:
        for path, code in paths.items():
            assert owner.get(path).status_code == 200, path
            theirs = other.get(path)
            unknown = other.get(path.replace(job_id, str(uuid.uuid4())).replace(session, str(uuid.uuid4()))
                                .replace(avatar, str(uuid.uuid4())))
            assert (theirs.status_code, error(theirs)) == (404, code) == (unknown.status_code, error(unknown)), path
        # Nor can they use it: another key's avatar or session in a job, or cancelling another key's job.
        assert error(other.post("/v1/jobs", data={"mode": "speak", "text": "Hi.", "avatar": avatar})) == \
            "avatar_not_found"
        assert error(other.post("/v1/jobs", data={"mode": "speak", "text": "Hi.", "session_id": session})) == \
            "session_not_found"
        assert error(other.delete(f"/v1/jobs/{job_id}")) == "job_not_found"


@pytest.mark.parametrize("job_id", ["..%2F..%2Fetc%2Fpasswd", "....", "%00", "a" * 300, "1 OR 1=1"])
def test_path_like_ids_are_unknown_ids(farm: Farm, job_id: str) -> None:
    with farm.client() as client:
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/video", f"/v1/sessions/{job_id}"):
            answer = client.get(path)
            assert answer.status_code in (404, 422), (path, answer.text)
            assert error(answer) in ("job_not_found", "session_not_found", "not_found", "bad_session_id")


@pytest.fixture
def tiny(farm: Farm) -> Iterator[str]:
    yield create_key(farm, f"tiny-{uuid.uuid4().hex[:6]}", "tiny")


def test_over_the_request_rate_is_429_with_retry_after(farm: Farm) -> None:
    slow = create_key(farm, f"slow-{uuid.uuid4().hex[:6]}", "slow")
    with farm.client(token=slow) as client:
        answers = [client.get("/v1/voices") for _ in range(8)]
    ok = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert len(ok) == farm.settings.auth.tiers["slow"].burst and limited, [a.status_code for a in answers]
    assert error(limited[0]) == "rate_limited" and int(limited[0].headers["Retry-After"]) >= 1
    assert ok[0].headers["RateLimit-Limit"] == str(farm.settings.auth.tiers["slow"].burst)
    assert int(ok[-1].headers["RateLimit-Remaining"]) < int(ok[0].headers["RateLimit-Remaining"])


def test_jobs_in_flight_and_upload_bytes_per_day_are_capped(farm: Farm, tiny: str, portrait_bytes: bytes) -> None:
    with farm.client(token=tiny) as client:
        first = speak(client, portrait_bytes, "The first of two.")
        second = speak(client, portrait_bytes, "The second of two.")
    assert first.status_code == 202, first.text
    assert (second.status_code, error(second)) == (429, "too_many_jobs") and "Retry-After" in second.headers
    farm.wait_job(first.json()["job_id"], token=tiny)
    with farm.client(token=tiny) as client:
        # 790 kB a portrait: the tiny tier's 1.2 MB a day allows one more upload, not two.
        again = client.post("/v1/avatars", files={"portrait": ("p.png", portrait_bytes)})
    assert (again.status_code, error(again)) == (429, "upload_quota_exceeded")
    assert int(again.headers["Retry-After"]) > 0


def test_an_oversized_upload_without_content_length_is_refused(farm: Farm) -> None:
    limit = farm.settings.limits.max_upload_bytes

    def body() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=\"portrait\"; filename=\"p.png\"\r\n\r\n"
        for _ in range(limit // (1 << 16) + 2):
            yield b"\0" * (1 << 16)

    with farm.client() as client:
        answer = client.post("/v1/jobs", content=body(),
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert "content-length" not in {k.lower() for k in answer.request.headers}
    assert (answer.status_code, error(answer)) == (413, "upload_too_large")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(farm: Farm) -> None:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # 400 M pixels in about 50 kB
    assert len(buffer.getvalue()) < 1_000_000
    with farm.client() as client:
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": "Boom."},
                             files={"portrait": ("bomb.png", buffer.getvalue())})
    assert answer.status_code in (413, 415, 422) and error(answer) in ("image_too_large", "bad_image")


def test_a_retried_submit_with_the_same_idempotency_key_answers_the_same_job(
        farm: Farm, portrait_bytes: bytes) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with farm.client() as client:
        first = client.post("/v1/jobs", data={"mode": "speak", "text": "Only once, please."}, headers=key,
                            files={"portrait": ("p.png", portrait_bytes)})
        again = client.post("/v1/jobs", data={"mode": "speak", "text": "Only once, please."}, headers=key,
                            files={"portrait": ("p.png", portrait_bytes)})
        other = client.post("/v1/jobs", data={"mode": "speak", "text": "Something else."}, headers=key,
                            files={"portrait": ("p.png", portrait_bytes)})
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert (other.status_code, error(other)) == (422, "idempotency_conflict")
    # Another key may use the same Idempotency-Key: keys are per API key.
    with farm.client(token=farm.other_token) as client:
        theirs = client.post("/v1/jobs", data={"mode": "speak", "text": "Something else."}, headers=key,
                             files={"portrait": ("p.png", portrait_bytes)})
    assert theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]
    farm.wait_job(first.json()["job_id"])
    farm.wait_job(theirs.json()["job_id"], token=farm.other_token)


def test_deleting_a_session_and_an_avatar_removes_their_files(farm: Farm, portrait_bytes: bytes) -> None:
    portrait = Image.open(io.BytesIO(portrait_bytes)).convert("RGB")
    portrait.putpixel((0, 0), (1, 2, 3))  # a portrait no other test uploads: its file is this test's alone
    buffer = io.BytesIO()
    portrait.save(buffer, format="PNG")
    mine = buffer.getvalue()
    store = ArtifactStore(farm.settings.artifact_dir)
    with farm.client() as client:
        avatar = client.post("/v1/avatars", files={"portrait": ("p.png", mine)}).json()["avatar_id"]
        session = client.post("/v1/sessions", json={"avatar": avatar}).json()["session_id"]
        text = f"Delete me later, number {uuid.uuid4().int % 1000}. Goodbye."
        job_id = client.post("/v1/jobs", data={"mode": "speak", "text": text, "session_id": session}).json()["job_id"]
        done = farm.wait_job(job_id)
        assert done["status"] == "succeeded", done["error"]
        before = {p.name for p in store.root.rglob("*") if p.is_file()}
        video = client.get(f"/v1/jobs/{job_id}/video")
        assert video.status_code == 200
        deleted = client.delete(f"/v1/sessions/{session}")
        assert deleted.status_code == 200 and deleted.json()["jobs"] == 1 and deleted.json()["files"] >= 3
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert client.get(f"/v1/sessions/{session}").status_code == 404
        after = {p.name for p in store.root.rglob("*") if p.is_file()}
        assert len(before - after) >= 3  # speech, segment video and MPEG-TS, the joined video...
        assert client.get(f"/v1/avatars/{avatar}/portrait").status_code == 200  # the avatar still names its photo
        gone = client.delete(f"/v1/avatars/{avatar}")
        assert gone.status_code == 200 and gone.json()["files"] == 1
        assert client.get(f"/v1/avatars/{avatar}").status_code == 404
    assert store.key_of(mine, "png") not in {p.name for p in store.root.rglob("*") if p.is_file()}
    # The repeat of the deleted job is not answered from the cache: its cached video went with it.
    with farm.client() as client:
        repeat = client.post("/v1/jobs", data={"mode": "speak", "text": text},
                             files={"portrait": ("p.png", mine)}).json()
    assert repeat["cached"] is False
    farm.wait_job(repeat["job_id"])


def test_event_streams_are_capped_per_key(farm: Farm, tiny: str, job: dict, portrait_bytes: bytes) -> None:
    with farm.client(token=tiny) as client:
        mine = speak(client, portrait_bytes, "Streams are few.").json()["job_id"]
        with client.stream("GET", f"/v1/jobs/{mine}/events") as first:
            assert first.status_code == 200
            second = client.get(f"/v1/jobs/{mine}/events")
            assert (second.status_code, error(second)) == (429, "too_many_streams")
    farm.wait_job(mine, token=tiny)


def test_the_back_office_answers_operators_only(farm: Farm) -> None:
    with farm.client(token=farm.other_token) as client:
        for path in ("/metrics", "/v1/stats"):
            assert (client.get(path).status_code, error(client.get(path))) == (403, "forbidden")
    with farm.client() as client:
        assert client.get("/metrics").status_code == 200 and client.get("/v1/stats").status_code == 200
    assert httpx.get(farm.url + "/metrics").status_code == 401


@pytest.fixture(scope="module")
def spoken_question(speak) -> bytes:
    """A question as speech (conftest's ``speak``: the farm's own Piper voice)."""
    return speak("Which planet do people live on?")


def _our_messages(seen: list[Seen], job_ids: list[str], prefix: str) -> list[Seen]:
    """The messages of this farm: through its own exchanges, or Celery task events of its jobs (other farms on
    the machine send task events to the same exchange)."""
    return [m for m in seen if m.exchange.startswith(prefix) or any(job_id in m.text for job_id in job_ids)]


def _task_events(messages: list[Seen]) -> list[dict]:
    """The Celery task events among ``messages`` (a worker may send several in one message)."""
    events: list[dict] = []
    for message in messages:
        if message.exchange == "celeryev":
            body = json.loads(message.body)
            events += body if isinstance(body, list) else [body]
    return events


def test_no_user_text_in_any_message_task_event_or_results_entry(
        farm: Farm, portrait_bytes: bytes, spoken_question: bytes) -> None:
    """RabbitMQ shows every message body in its management UI and keeps it on disk; Flower shows the task events;
    the results Redis keeps what tasks return and the segment ledger. A typed chat job in a session with a
    persona, then a spoken one that has the first as its history: no question, persona, transcript, reply or
    sentence of theirs is in any of those (only IDs and artifact keys are), while the API and the event stream
    answer with every text as before; deleting the session removes the text artifacts the messages named."""
    n = uuid.uuid4().int % 1000
    question = f"What is the name of the blue planet, friend number {n}?"
    persona = f"You are Captain Ottoline of the airship Quince {n}, and you answer briefly."
    with MessageSpy(farm.settings) as spy, farm.client() as client:
        session = client.post("/v1/sessions", json={"system_prompt": persona}).json()["session_id"]
        typed = client.post("/v1/jobs", data={"mode": "chat", "text": question, "session_id": session},
                            files={"portrait": ("p.png", portrait_bytes)}).json()["job_id"]
        first = farm.wait_job(typed)
        said = client.post("/v1/jobs", data={"mode": "chat", "session_id": session},
                           files={"portrait": ("p.png", portrait_bytes),
                                  "audio": ("q.wav", spoken_question)}).json()["job_id"]
        second = farm.wait_job(said)
        time.sleep(1.0)  # the last task events are sent after the job's own completed event
        seen = _our_messages(spy.collect(), [typed, said], farm.settings.queue_prefix)
        streamed = client.get(f"/v1/jobs/{typed}/events").text

    assert first["status"] == second["status"] == "succeeded", (first["error"], second["error"])
    # The API answers with the texts, as before.
    assert first["text"] == question and first["reply"] and second["transcript"] and second["reply"]
    for job in (first, second):
        assert job["stream"] and " ".join(s["text"] for s in job["segments"]) == job["reply"]
    frames = [json.loads(line[len("data: "):]) for line in streamed.splitlines() if line.startswith("data: ")]
    [llm_finished] = [f for f in frames if (f.get("stage"), f.get("kind")) == ("llm", "finished")]
    assert llm_finished["reply"] == first["reply"] and llm_finished["spoken_reply"] == first["spoken_reply"]
    assert [f["text"] for f in frames if f.get("kind") == "segment"] and all("texts" not in f for f in frames)

    texts = [question, persona, *(job[f] for job in (first, second) for f in ("transcript", "reply", "spoken_reply")),
             *(s["text"] for job in (first, second) for s in job["segments"])]
    needles = {piece for text in texts if text and len(text.strip()) >= 8 for piece in (text, text[:24])}
    stages = {m.routing_key for m in seen if m.exchange == farm.settings.queue_name("talkfarm.stages")}
    assert stages >= {"asr", "llm", "tts", "animation"} and any(m.routing_key.startswith("job.") for m in seen)
    events = [e for e in _task_events(seen) if str(e.get("uuid", "")).startswith((typed, said))]
    assert {e["type"] for e in events} >= {"task-received", "task-succeeded"}  # what Flower shows was captured
    for message in seen:
        shown = message.text
        assert not [needle for needle in needles if needle in shown], (message.exchange, message.routing_key)
    held = [(key, value) for key, value in results_redis_entries(farm.settings.redis.results_url)
            if farm.settings.queue_prefix in key or typed in key or said in key]
    assert any(typed in key for key, _ in held)  # the results and the ledger of the jobs are there
    for key, value in held:
        assert not [needle for needle in needles if needle in value], key

    # The texts are artifacts the messages name by key; deleting the session removes them.
    named = {key for m in seen if m.exchange == farm.settings.queue_name("talkfarm.stages")
             for field, key in json.loads(m.body)[0][0].items()
             if field in ("context_key", "transcript_key", "reply_key", "segment_text_key") and key}
    named |= {key for m in seen if m.routing_key.startswith("job.")
              for key in (json.loads(m.body).get("data", {}).get("texts") or {}).values() if key}
    store = ArtifactStore(farm.settings.artifact_dir)
    assert len(named) >= 6 and all(store.exists(key) for key in named)
    with farm.client() as client:
        assert client.delete(f"/v1/sessions/{session}").status_code == 200
    assert [key for key in named if store.exists(key)] == []
