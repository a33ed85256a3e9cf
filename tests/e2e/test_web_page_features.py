"""The web page's other features in a real browser (Debian's headless Chromium, driven by Playwright) against
the real farm: a question recorded with the microphone, cancelling a reply, a conversation of two turns with
its videos and the MP4 download, a saved avatar, and the keyboard and screen-reader basics.

The microphone is Chromium's fake capture device playing a WAV of real speech (the farm's own Piper voice)
into ``getUserMedia``, so the page's MediaRecorder makes the WebM/Opus a browser really sends. One browser
and the session's farm serve the whole module; every test has its own browser context (its own
``localStorage``). Screenshots go to ``TALKFARM_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from contracts.audio import decode_audio, resample, wav_bytes
from tests.browser import artifacts, chromium, farm_page
from tests.e2e.test_asr_speech import word_error_rate
from tests.e2e.test_web_page import PORTRAIT, TERMINAL
from tests.farm import Farm
from tests.media import ffprobe, moov_before_mdat

pytestmark = pytest.mark.e2e

# Short answers keep each turn quick.
PERSONA = "You are a friendly assistant. Answer in one short sentence."
# Heard by Whisper base in 12 of 12 of Piper's takes through WebM/Opus (tests/e2e/test_asr_farm.py).
SPOKEN = "Can you tell me where the nearest train station is?"
# Long enough to be still running when it is cancelled.
LONG = "Write a short story about a dog called Rex, in five sentences."  # asked nowhere else: never a cache hit
STATE = "document.getElementById('status').dataset.state"
# Keeps the fields of each job the page submits (Chromium does not show a request body holding files).
SENT = """
window.sentJobs = [];
const originalFetch = window.fetch;
window.fetch = (url, init = {}) => {
  if (init.method === "POST" && String(url).endsWith("/v1/jobs") && init.body instanceof FormData) {
    window.sentJobs.push(Object.fromEntries([...init.body.entries()].map(
      ([name, value]) => [name, value instanceof Blob ? value.name : value])));
  }
  return originalFetch(url, init);
};
"""


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory, speak: Callable[[str], bytes]) -> tuple[Path, float]:
    """The spoken question as the fake microphone plays it: 48 kHz 16-bit mono WAV, and its length in seconds."""
    samples = resample(decode_audio(speak(SPOKEN), 22050), 22050, 48000)
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    path.write_bytes(wav_bytes(samples, 48000))
    with wave.open(str(path)) as w:
        return path, w.getnframes() / w.getframerate()


@pytest.fixture(scope="module")
def browser(spoken_wav: tuple[Path, float]) -> Iterator[Any]:
    with chromium("--use-fake-ui-for-media-stream",  # the microphone permission is granted without a prompt
                  "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={spoken_wav[0]}%noloop") as browser:  # played once, then silence
        yield browser


@pytest.fixture
def page(browser: Any, farm: Farm) -> Iterator[Any]:
    with farm_page(browser, farm, SENT, permissions=["microphone"], accept_downloads=True) as page:
        yield page


def pick_portrait(page: Any) -> None:
    page.set_input_files("#portrait", str(PORTRAIT))
    page.get_by_text("Face found.").wait_for(timeout=30_000)


def set_persona(page: Any) -> None:
    page.locator("summary").click()
    page.get_by_label("How the portrait should answer").fill(PERSONA)


def submit(page: Any) -> dict[str, str]:
    """Press Ask; the form fields the page sent to ``POST /v1/jobs`` (files as their names), as ``SENT`` keeps them."""
    count = page.evaluate("window.sentJobs.length")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_function(f"window.sentJobs.length > {count}")
    return dict(page.evaluate("window.sentJobs.at(-1)"))


def finish(page: Any, timeout_ms: int = 300_000) -> str:
    """Wait until the page shows the job's end; the state it shows."""
    page.wait_for_function(f"{list(TERMINAL)}.includes({STATE})", timeout=timeout_ms)
    return str(page.evaluate(STATE))


def ask(page: Any, question: str) -> tuple[str, dict[str, str]]:
    page.get_by_label("Type your question").fill(question)
    fields = submit(page)
    state = finish(page)
    assert state == "succeeded", f"the page ended {state}: {page.locator('#form-error').inner_text()}"
    return page.evaluate("window.talkfarmPage.job.id"), fields


def test_a_recorded_question_is_heard_and_answered(page: Any, farm: Farm, spoken_wav: tuple[Path, float]) -> None:
    pick_portrait(page)
    set_persona(page)
    record = page.locator("#record")
    assert record.inner_text() == "Record with the microphone"
    record.click()
    page.get_by_text("Recording… press again to stop.").wait_for()
    assert record.get_attribute("aria-pressed") == "true"
    time.sleep(spoken_wav[1] + 1.0)
    page.get_by_role("button", name="Stop recording").click()
    page.locator("#recording-box").wait_for(state="visible")
    assert page.get_by_label("Type your question").is_disabled()  # the recording is the question now
    kind = page.evaluate("window.talkfarmPage.recording.type")
    assert kind.startswith("audio/webm"), kind

    fields = submit(page)
    assert fields.get("audio") == "question.webm" and "text" not in fields, fields
    state = finish(page)
    assert state == "succeeded", f"the page ended {state}: {page.locator('#form-error').inner_text()}"
    job = farm.wait_job(page.evaluate("window.talkfarmPage.job.id"))
    shown = page.locator("#transcript").inner_text()
    print(f"\nheard {shown!r}; replied {job['reply']!r}")
    assert shown == job["transcript"]
    # Whisper on CPU may mishear a word of a synthetic voice.
    assert word_error_rate([(SPOKEN, shown)]) <= 0.2, shown
    assert page.locator("#reply").inner_text().strip() == job["reply"].strip() != ""
    assert page.locator("#turns li").first.inner_text().startswith(f"You: {job['transcript']}")
    page.screenshot(path=str(artifacts() / "web_page_microphone.png"), full_page=True)
    assert not page.errors, page.errors


def test_cancel_while_the_reply_is_made_then_ask_again(page: Any, farm: Farm) -> None:
    pick_portrait(page)
    set_persona(page)
    page.get_by_label("Type your question").fill(LONG)
    submit(page)
    page.wait_for_function("document.querySelector('#progress li[data-state=\"running\"]')", timeout=120_000)
    job_id = page.evaluate("window.talkfarmPage.job.id")
    page.get_by_role("button", name="Cancel the reply").click()
    assert finish(page, 60_000) == "cancelled"
    assert page.locator("#status").inner_text() == "You cancelled this reply."
    assert page.locator('#progress li[data-state="cancelled"]').count() >= 1
    assert page.get_by_role("button", name="Cancel the reply").is_hidden()
    assert page.get_by_role("button", name="Ask").is_enabled()
    assert page.locator("#turns li").count() == 0  # a cancelled reply is no turn of the conversation
    job = farm.wait_job(job_id)
    assert job["status"] == "cancelled" and job["error"]["code"] == "cancelled", job
    page.screenshot(path=str(artifacts() / "web_page_cancelled.png"), full_page=True)

    # The farm and the page are still usable: the next question is answered.
    next_id, _ = ask(page, "Say hello.")
    assert next_id != job_id
    assert page.locator("#turns li").count() == 1

    # Cancelled at once, before the farm has even accepted the job: that job is the one cancelled, not the last.
    page.get_by_label("Type your question").fill(LONG)
    submit(page)
    page.get_by_role("button", name="Cancel the reply").click()
    assert finish(page, 120_000) == "cancelled", page.locator("#status").inner_text()
    early = farm.wait_job(page.evaluate("window.talkfarmPage.job.id"))
    assert early["status"] == "cancelled", early
    assert farm.wait_job(next_id)["status"] == "succeeded"
    assert page.locator("#turns li").count() == 1
    assert not page.errors, page.errors


def test_a_conversation_of_two_turns_its_videos_the_download_and_a_new_session(
        page: Any, farm: Farm, tmp_path: Path) -> None:
    pick_portrait(page)
    set_persona(page)
    first_id, first_fields = ask(page, "What is your name?")
    assert first_fields.get("portrait") == "portrait.png", first_fields

    # The photo saved as an avatar: the next turn sends its ID, not the photo again.
    page.get_by_role("button", name="Save this photo as an avatar").click()
    page.get_by_text("Saved as an avatar").wait_for()
    avatar_id = page.get_by_label("or a saved avatar").input_value()
    assert avatar_id
    second_id, second_fields = ask(page, "What colour is the sky?")
    assert "portrait" not in second_fields and second_fields.get("avatar") == avatar_id, second_fields
    first, second = farm.wait_job(first_id), farm.wait_job(second_id)
    assert second_fields.get("session_id") == first["session_id"] == second["session_id"]

    turns = page.locator("#turns li")
    assert turns.count() == 2
    assert page.locator("#session-status").inner_text() == "2 turns in this session."
    for index, job in enumerate((first, second)):
        turn = turns.nth(index)
        assert turn.locator("p").nth(0).inner_text() == f"You: {job['transcript'] or job['text']}"
        assert turn.locator("p").nth(1).inner_text() == f"Reply: {job['reply']}"
        video = turn.get_by_label(f"Reply {index + 1}, to replay")
        video.evaluate("v => { v.muted = true; return v.play(); }")
        video.evaluate("v => new Promise((ok) => { const t = () => (v.currentTime > 0.3 ? ok() : "
                       "setTimeout(t, 50)); t(); })")
        duration = video.evaluate("v => v.duration")
        assert duration == pytest.approx(job["video_seconds"], abs=0.3), (duration, job["video_seconds"])
        video.evaluate("v => v.pause()")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the video (MP4)").click()
    mp4 = tmp_path / "reply.mp4"
    download.value.save_as(mp4)
    assert download.value.suggested_filename == f"talkfarm-{second_id}.mp4"
    data = mp4.read_bytes()
    assert data[4:8] == b"ftyp" and moov_before_mdat(mp4)
    probe = ffprobe(mp4)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac"), probe
    assert probe.duration == pytest.approx(second["video_seconds"], abs=0.3)
    with farm.client() as client:
        assert client.get(f"/v1/jobs/{second_id}/video").content == data  # the farm's MP4, byte for byte
    page.screenshot(path=str(artifacts() / "web_page_conversation.png"), full_page=True)

    page.get_by_role("button", name="New session").click()
    assert turns.count() == 0
    assert page.evaluate("window.talkfarmPage.sessionId") is None
    assert page.locator("#answer").is_hidden()  # the old conversation's answer is cleared away
    assert page.locator("#session-status").inner_text().startswith("New session")
    assert page.evaluate("document.activeElement.id") == "text"

    # A later visit: the saved avatar is in the list, with its photo, and nothing needs uploading.
    page.reload()
    picker = page.get_by_label("or a saved avatar")
    picker.select_option(avatar_id)
    page.get_by_text("Saved avatar chosen.").wait_for()
    assert page.get_by_role("img", name="Preview of the saved avatar").is_visible()
    assert page.locator("#preview").evaluate("img => img.complete && img.naturalWidth") == 512
    assert not page.errors, page.errors


def test_labels_alt_texts_and_focus_on_errors(page: Any, farm: Farm) -> None:
    # Every control has an accessible name: its label (or aria-label for the media).
    unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button, video, audio')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map((el) => el.id || el.outerHTML)""")
    assert unnamed == []
    for name in ("Your API key", "A photo of a face", "or a saved avatar", "Mode", "Type your question", "Voice",
                 "Language", "How the portrait should answer (optional; used when a new session starts)"):
        assert page.get_by_label(name, exact=True).count() == 1, name
    snapshot = page.locator("#ask").aria_snapshot()
    assert 'combobox "Mode"' in snapshot and 'textbox "Type your question"' in snapshot, snapshot

    pick_portrait(page)
    missing_alt = page.evaluate("""() => [...document.querySelectorAll('img')]
        .filter((img) => !img.hidden && !img.alt).map((img) => img.outerHTML)""")
    assert missing_alt == []
    assert page.get_by_role("img", name="Preview of the chosen photo, portrait.png").is_visible()

    # An error found on the page: the focus moves to the question it is about.
    page.get_by_role("button", name="Ask").focus()
    page.keyboard.press("Enter")
    error = page.locator("#question-error")
    error.wait_for(state="visible")
    assert error.get_attribute("role") == "alert"
    assert page.evaluate("document.activeElement.id") == "text"

    # An error the API answers (text_too_long): said next to the question, the focus moved there.
    page.get_by_label("Type your question").fill("Why? " * 100)  # 500 characters, over the farm's 400
    page.get_by_role("button", name="Ask").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{STATE} === 'failed'")
    assert error.inner_text() == "The text is too long. Make it shorter."
    assert page.locator("#question-field").get_attribute("class") == "invalid"
    assert page.evaluate("document.activeElement.id") == "text"
    assert "question-error" in (page.get_by_label("Type your question").get_attribute("aria-describedby") or "")
    page.screenshot(path=str(artifacts() / "web_page_error_focus.png"), full_page=True)

    # An error of the whole form (the farm cannot be reached): said above the buttons, the focus moved to it.
    page.get_by_label("Type your question").fill("Hello?")
    page.route("**/v1/jobs", lambda route: route.abort())
    page.get_by_role("button", name="Ask").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{STATE} === 'failed'")
    page.unroute("**/v1/jobs")
    form_error = page.get_by_role("alert").filter(has_text="The farm could not be reached.")
    assert form_error.is_visible()
    assert page.evaluate("document.activeElement.id") == "form-error"
    assert page.get_by_role("button", name="Ask").is_enabled()
    assert not page.errors, page.errors
