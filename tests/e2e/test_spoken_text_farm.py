"""The spoken-text front end in the real farm: pauses and emoji never fail a job, streamed or not; text with
nothing to say or in a language no voice speaks is refused at submit; a job shows the written and the said text."""

from __future__ import annotations

import time

import httpx
import pytest

from coordinator.store.repo import JobStore, make_engine
from tests.e2e.test_tts_farm import submit
from tests.farm import Farm

pytestmark = pytest.mark.e2e

PAUSES = "Hello... How are you? — Fine! ?! Thanks for asking 😀🎉"


@pytest.mark.parametrize("stream", ["true", "false"])
def test_pauses_between_sentences_and_trailing_emoji(farm: Farm, portrait_bytes: bytes, stream: str) -> None:
    job = submit(farm, portrait_bytes, mode="speak", text=PAUSES, stream=stream)
    assert job["status"] == "succeeded", job["error"]
    assert job["text"] == PAUSES  # what users read stays as written
    assert job["spoken_text"] is not None and "😀" not in job["spoken_text"] and "..." not in job["spoken_text"]
    assert "How are you?" in job["spoken_text"] and job["video_seconds"] > 2.0
    if stream == "true":
        texts = [s["text"] for s in job["segments"]]
        # No segment is only a pause: "?!" went with the next sentence, the emoji with the last, as written.
        assert texts == ["Hello...", "How are you?", "— Fine!", "?! Thanks for asking 😀🎉"], texts
        assert all(s["seconds"] > 0.5 for s in job["segments"])


def test_a_chat_question_with_pauses_and_emoji(farm: Farm, portrait_bytes: bytes) -> None:
    for stream in ("true", "false"):
        job = submit(farm, portrait_bytes, mode="chat", stream=stream, text="Hi... how are you today? 😀")
        assert job["status"] == "succeeded", job["error"]
        assert job["reply"] and job["spoken_reply"], job
        assert not any(c in job["spoken_reply"] for c in "*#`😀")


def test_markup_is_shown_as_written_and_said_as_words(farm: Farm, portrait_bytes: bytes) -> None:
    text = "**Sure!** Dr. Smith paid $3.50 on 1/2/2025."
    job = submit(farm, portrait_bytes, mode="speak", text=text, stream="false")
    assert job["status"] == "succeeded", job["error"]
    assert job["text"] == text
    assert job["spoken_text"] == ("Sure! Doctor Smith paid three dollars and fifty cents on January second, "
                                  "twenty twenty-five.")


def published_voices(client: httpx.Client) -> list[dict]:
    """The voices of the TTS offer, once the coordinator has read it (languages are checked only then)."""
    deadline = time.monotonic() + 30
    while not (voices := client.get("/v1/voices").json()["voices"]):
        assert time.monotonic() < deadline, "no TTS offer"
        time.sleep(0.5)
    return voices


@pytest.mark.parametrize(("text", "code"), [
    ("... 😀🎉 ?!", "nothing_to_say"),
    ("```\nprint(1)\n```", "nothing_to_say"),
    ("مرحبا بكم في بيتنا", "unsupported_language"),
])
def test_refused_at_submit(farm: Farm, portrait_bytes: bytes, text: str, code: str) -> None:
    store = JobStore(make_engine(farm.settings.db_url))
    with farm.client() as client:
        voices = published_voices(client)
        before = store.counts()
        answer = client.post("/v1/jobs", data={"mode": "speak", "text": text},
                             files={"portrait": ("portrait.png", portrait_bytes)})
    assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    if code == "unsupported_language":
        message = answer.json()["message"]
        assert "ar" in message and all(language in message for v in voices for language in v["languages"])
    assert store.counts() == before  # nothing stored, nothing published
