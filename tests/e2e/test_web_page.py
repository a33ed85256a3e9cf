"""The web page in a real browser (Debian's headless Chromium, driven by Playwright) against the real farm.

A portrait and a typed question go in; the video must be playing (its ``currentTime`` advancing) while
the job is still running, since the page plays the reply from its first segment, and the time from
submit to the first frame is measured. A photo without a face must be refused next to the photo before
anything is sent. Screenshots of both and a JSON of the timings are kept in ``TALKFARM_TEST_ARTIFACTS``
(default ``test-artifacts/``).

The browser is the system's (``tests.browser``): a missing browser fails the test, it is never skipped
and never downloaded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser import artifacts, chromium, farm_page
from tests.farm import Farm
from tests.media import landscape_png

pytestmark = pytest.mark.e2e

PORTRAIT = Path(__file__).parents[1] / "data" / "portrait.png"
# As in test_streaming: a persona that lets the small model go on, and a question asking for several sentences.
PERSONA = "You are a friendly, helpful assistant."
# Worded for this file alone: the same question, portrait and persona asked before in the session's farm would be
# answered from the video cache at once, with nothing to stream.
QUESTION = "Write a short story about a cat called Tom, in five sentences."
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, farm: Farm) -> Iterator[Any]:
    with farm_page(browser, farm) as page:
        yield page


def test_the_reply_plays_from_its_first_segment_while_the_job_runs(page: Any, farm: Farm) -> None:
    page.set_input_files("#portrait", str(PORTRAIT))
    page.get_by_text("Face found.").wait_for(timeout=30_000)
    page.locator("summary").click()
    page.get_by_label("How the portrait should answer").fill(PERSONA)
    page.get_by_label("Type your question").fill(QUESTION)
    page.evaluate("""() => {
        window.stalls = 0;
        document.getElementById('video').addEventListener('waiting', () => { window.stalls += 1; });
    }""")
    playlists: list[str] = []
    page.on("request", lambda request: playlists.append(request.url) if "stream.m3u8" in request.url else None)
    page.get_by_role("button", name="Ask").click()

    deadline = time.monotonic() + 600
    playing_while_running: dict[str, Any] | None = None
    with farm.client() as client:
        while time.monotonic() < deadline:
            seen = page.evaluate("""() => ({
                time: document.getElementById('video').currentTime,
                state: document.getElementById('status').dataset.state,
                job: window.talkfarmPage.job && window.talkfarmPage.job.id,
            })""")
            if playing_while_running is None and seen["job"] and seen["time"] > 0.2:
                job = client.get(f"/v1/jobs/{seen['job']}").json()  # asked after the video had advanced
                if job["status"] not in TERMINAL:
                    playing_while_running = {"current_time": seen["time"], "job_status": job["status"],
                                             "segments_landed": len(job.get("segments") or [])}
                    page.screenshot(path=str(artifacts() / "web_page_playing.png"), full_page=True)
            if seen["state"] in TERMINAL:
                break
            time.sleep(0.1)
    assert seen["state"] == "succeeded", f"the page ended {seen['state']}: {page.locator('#form-error').inner_text()}"
    job = farm.wait_job(seen["job"])
    assert playing_while_running is not None, (
        f"the video did not advance before the job finished ({len(job.get('segments') or [])} segments, "
        f"cached: {job.get('cached')})")

    page.get_by_role("link", name="Download the video (MP4)").wait_for()
    page.locator("#turns li").first.wait_for()
    assert page.locator("#transcript").inner_text() == QUESTION
    assert page.locator("#reply").inner_text().strip() == job["reply"].strip()
    assert page.locator("#download").get_attribute("href").startswith("blob:")
    page.wait_for_function("document.getElementById('video').currentTime > 1")
    page.screenshot(path=str(artifacts() / "web_page_done.png"), full_page=True)

    marks = page.evaluate("window.talkfarmPage.timings")
    assert marks.get("firstFrame") and marks["firstFrame"] < marks["done"], marks
    seconds = {name: round((at - marks["submit"]) / 1000, 3) for name, at in marks.items() if name != "submit"}
    timings = {
        "submit_to_first_frame_seconds": seconds["firstFrame"],
        "submit_to_accepted_seconds": seconds["accepted"],
        "submit_to_first_segment_event_seconds": seconds["firstSegment"],
        "submit_to_done_seconds": seconds["done"],
        "farm_time_to_first_segment_seconds": job["time_to_first_segment_seconds"],
        "segments": len(job["segments"]),
        "video_seconds": job["video_seconds"],
        "stalls": page.evaluate("window.stalls"),
        "playlist_requests": len(playlists),
        "blocking_reloads": sum("_HLS_msn=" in url for url in playlists),
        "playing_while_running": playing_while_running,
    }
    (artifacts() / "web_page_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("web page timings:", json.dumps(timings))
    assert seconds["firstFrame"] < seconds["done"]
    # The player asked for each next segment with a blocking reload (hls.js saw CAN-BLOCK-RELOAD).
    assert any("_HLS_msn=" in url for url in playlists), playlists
    assert not page.errors, page.errors


def test_a_photo_without_a_face_is_refused_next_to_the_photo(page: Any, farm: Farm) -> None:
    page.set_input_files("#portrait", files=[{"name": "landscape.png", "mimeType": "image/png",
                                              "buffer": landscape_png()}])
    error = page.locator("#portrait-field #portrait-error")
    error.wait_for(state="visible", timeout=30_000)
    assert "could not find a face" in error.inner_text()
    assert page.locator("#portrait-field").get_attribute("class") == "invalid"
    assert page.get_by_role("img", name="Preview of the chosen photo, landscape.png").is_visible()

    page.get_by_label("Type your question").fill("Hello, who are you?")
    page.get_by_role("button", name="Ask").click()  # refused on the page: no job is sent
    assert page.evaluate("window.talkfarmPage.job") is None
    assert page.evaluate("document.activeElement.id") == "portrait"
    page.screenshot(path=str(artifacts() / "web_page_no_face.png"), full_page=True)
    assert not page.errors, page.errors
