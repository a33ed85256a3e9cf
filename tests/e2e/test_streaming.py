"""Sentence streaming on the real farm: segments land before the reply is finished, HLS, assembly, cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import av
import pytest

from tests.farm import Farm
from tests.media import ffprobe, moov_before_mdat

pytestmark = pytest.mark.e2e

SIX_SENTENCES = ("The sun rose over the quiet harbour. Fishing boats drifted out past the old stone wall. "
                 "Gulls circled above the nets and called to each other. A small dog barked at the waves. "
                 "By noon the market was full of people. Everyone agreed it was a perfect day.")


def submit(farm: Farm, portrait: bytes, **form: str) -> dict:
    with farm.client() as client:
        answer = client.post("/v1/jobs", data=form, files={"portrait": ("portrait.png", portrait)})
    assert answer.status_code == 202, answer.text
    return answer.json()


def sse_events(farm: Farm, job_id: str, timeout: float = 300.0) -> list[dict]:
    """Every SSE frame of the job, in arrival order, until the stream ends."""
    frames: list[dict] = []
    with farm.client(timeout=timeout) as client, client.stream("GET", f"/v1/jobs/{job_id}/events") as answer:
        kind = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                frames.append({"event": kind, **json.loads(line[len("data: "):])})
    return frames


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def check_playlist_and_assembly(farm: Farm, job: dict, tmp_path: Path) -> None:
    segments = job["segments"]
    assert [s["index"] for s in segments] == list(range(len(segments)))
    with farm.client() as client:
        playlist = client.get(f"/v1/jobs/{job['job_id']}/stream.m3u8")
        assert playlist.status_code == 200
        assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        lines = playlist.text.splitlines()
        uris = [ln for ln in lines if ln and not ln.startswith("#")]
        assert uris == [f"segments/{i}.ts" for i in range(len(segments))]  # in order, all of them
        assert lines[-1] == "#EXT-X-ENDLIST"
        durations = [float(ln[len("#EXTINF:"):].rstrip(",")) for ln in lines if ln.startswith("#EXTINF:")]
        for i, uri in enumerate(uris):
            part = client.get(f"/v1/jobs/{job['job_id']}/{uri}")
            assert part.status_code == 200 and part.headers["content-type"] == "video/mp2t"
            (tmp_path / f"{i}.ts").write_bytes(part.content)
            assert abs(decoded_frames(tmp_path / f"{i}.ts") / 25 - durations[i]) < 0.05
        video = client.get(f"/v1/jobs/{job['job_id']}/video")
        assert video.status_code == 200
    final = tmp_path / "final.mp4"
    final.write_bytes(video.content)
    probe = ffprobe(final)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac") and moov_before_mdat(final)
    total = sum(s["seconds"] for s in segments)
    assert abs(probe.duration - total) <= 0.1, (probe.duration, total)
    assert abs(job["video_seconds"] - total) <= 0.1


def test_speak_streams_one_segment_per_sentence(farm: Farm, portrait_bytes, tmp_path):
    answer = submit(farm, portrait_bytes, mode="speak", text=SIX_SENTENCES, stream="true")
    frames = sse_events(farm, answer["job_id"])
    job = farm.wait_job(answer["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["stream"] is True and len(job["segments"]) == 6
    assert job["time_to_first_segment_seconds"] is not None
    segment_frames = [f for f in frames if f["event"] == "segment"]
    assert sorted(f["segment"] for f in segment_frames) == list(range(6))
    assert all(f["url"].endswith(f"/segments/{f['segment']}.ts") and f["seconds"] > 0 for f in segment_frames)
    # The first segment is out long before the last one: the player can start at once.
    first = next(i for i, f in enumerate(frames) if f["event"] == "segment")
    completed = next(i for i, f in enumerate(frames) if f["event"] == "completed")
    assert first < completed
    check_playlist_and_assembly(farm, job, tmp_path)


def test_chat_reply_segments_arrive_before_the_llm_finishes(farm: Farm, portrait_bytes, tmp_path):
    # The default system prompt asks for one to three sentences; this persona lets the model go on.
    with farm.client() as client:
        session = client.post("/v1/sessions", json={"system_prompt": "You are a friendly, helpful assistant."})
    assert session.status_code == 201, session.text
    answer = submit(farm, portrait_bytes, mode="chat", stream="true", session_id=session.json()["session_id"],
                    text="Write a short story about a cat, in five sentences.")
    frames = sse_events(farm, answer["job_id"])
    job = farm.wait_job(answer["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert len(job["segments"]) >= 4, job["reply"]
    first_segment = next(i for i, f in enumerate(frames) if f["event"] == "segment")
    llm_finished = next(i for i, f in enumerate(frames) if f["event"] == "finished" and f["stage"] == "llm")
    assert first_segment < llm_finished, [(f["event"], f["stage"]) for f in frames]
    assert job["reply"] == " ".join(s["text"] for s in job["segments"])
    check_playlist_and_assembly(farm, job, tmp_path)


def test_cancel_stops_the_remaining_subtasks(farm: Farm, portrait_bytes):
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
             "thirteen", "fourteen", "fifteen", "sixteen"]
    text = " ".join(f"Now step {w} is done." for w in words)  # 16 sentences: most still queued at the cancel
    answer = submit(farm, portrait_bytes, mode="speak", text=text, stream="true")
    job_id = answer["job_id"]
    with farm.client() as client:
        deadline = time.monotonic() + 120
        while not client.get(f"/v1/jobs/{job_id}").json().get("segments"):
            assert time.monotonic() < deadline, "no segment landed"
            time.sleep(0.1)
        cancelled = client.delete(f"/v1/jobs/{job_id}")
        acknowledged = time.time()
        assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
        time.sleep(8)  # long enough for several more sentences, had they not been stopped
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled"
        assert len(job["segments"]) < 16
        assert client.get(f"/v1/jobs/{job_id}/video").status_code == 409
        again = client.delete(f"/v1/jobs/{job_id}")
        assert again.status_code == 409 and again.json()["code"] == "job_finished"
        assert client.delete("/v1/jobs/00000000-0000-0000-0000-000000000000").json()["code"] == "job_not_found"
    started = [f for f in sse_events(farm, job_id) if f["event"] == "started"]
    late = [f for f in started if _epoch(f["at"]) > acknowledged]
    assert not late, late


def test_unstreamed_job_has_no_playlist(farm: Farm, portrait_bytes):
    answer = submit(farm, portrait_bytes, mode="speak", text="Just one video, please.", stream="false")
    job = farm.wait_job(answer["job_id"])
    assert job["status"] == "succeeded" and job["stream"] is False
    with farm.client() as client:
        playlist = client.get(f"/v1/jobs/{answer['job_id']}/stream.m3u8")
    assert playlist.status_code == 404 and playlist.json()["code"] == "not_streamed"


def _epoch(iso: str) -> float:
    from datetime import datetime, timezone

    at = datetime.fromisoformat(iso)
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()
