"""The web page's routes on a real coordinator (no workers): the page and everything it loads are served from
``/`` and ``/static``, and a blocking playlist reload is held until the job changes, then answered at once."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.farm import Farm, coordinator_alone

pytestmark = pytest.mark.integration
PORTRAIT = (Path(__file__).parents[1] / "data" / "portrait.png").read_bytes()
TARGET_SECONDS = 2.0


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    settings = {"TALKFARM_STREAM_REPLIES": "true", "TALKFARM_HLS_TARGET_SECONDS": str(TARGET_SECONDS)}
    with coordinator_alone(tmp_path_factory.mktemp("coordinator"), settings, key=("web", "standard")) as farm:
        yield farm


def test_the_page_and_all_it_loads_come_from_the_coordinator(coordinator: Farm) -> None:
    with coordinator.client(token="") as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        loaded = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
        assert "/static/vendor/hls.js/hls.light.min.js" in loaded and "/static/page.js" in loaded
        assert not [url for url in loaded if "://" in url or url.startswith("//")]  # no CDN, no other site
        pending, fetched = [u for u in loaded if u.startswith("/static/")], set()
        while pending:  # the page's files and every module they import, in turn
            url = pending.pop()
            fetched.add(url)
            answer = client.get(url)
            assert answer.status_code == 200, url
            if url.endswith(".js"):
                assert "javascript" in answer.headers["content-type"], url  # modules need a script type
                imported = {"/static/" + name for name in re.findall(r'from "\./([\w.]+\.js)"', answer.text)}
                pending += sorted(imported - fetched)
        assert {"/static/page.js", "/static/api.js", "/static/player.js", "/static/reply.js"} <= fetched
        assert client.get("/static/nothing.js").status_code == 404


def test_a_blocking_reload_waits_for_the_job_and_answers_when_it_changes(coordinator: Farm) -> None:
    with coordinator.client() as client:
        job = client.post("/v1/jobs", data={"mode": "speak", "text": "Hello there.", "stream": "true"},
                          files={"portrait": ("portrait.png", PORTRAIT)}).json()
        playlist = f"/v1/jobs/{job['job_id']}/stream.m3u8"
        plain = client.get(playlist)
        assert plain.status_code == 200 and "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in plain.text
        assert "#EXT-X-ENDLIST" not in plain.text  # no worker: the job waits in its queue

        start = time.monotonic()
        timed_out = client.get(playlist, params={"_HLS_msn": 0})
        held = time.monotonic() - start
        assert timed_out.status_code == 200 and 3 * TARGET_SECONDS - 0.5 < held < 3 * TARGET_SECONDS + 3
        assert "#EXT-X-ENDLIST" not in timed_out.text

        # A cancel wakes the held request through the job's watcher: it answers the closed playlist at once.
        timer = threading.Timer(1.0, lambda: client.delete(f"/v1/jobs/{job['job_id']}"))
        start = time.monotonic()
        timer.start()
        woken = client.get(playlist, params={"_HLS_msn": 0})
        held = time.monotonic() - start
        timer.join()
        assert woken.status_code == 200 and woken.text.rstrip().endswith("#EXT-X-ENDLIST")
        assert 0.9 < held < 3 * TARGET_SECONDS - 1, held

        assert client.get(playlist, params={"_HLS_msn": -1}).status_code == 422
