"""The HLS playlist of a streamed job, and the blocking playlist reload that waits for a segment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from coordinator.events import JobWatchers
from coordinator.hls import PlaylistEntry, playable, playlist
from coordinator.store.models import EventRow, JobRow
from coordinator.streams import wait_for_segment

pytestmark = pytest.mark.unit


def entry(i: int, seconds: float = 2.0) -> PlaylistEntry:
    return PlaylistEntry(index=i, seconds=seconds, uri=f"segments/{i}.ts")


def test_only_the_unbroken_run_from_zero_is_listed() -> None:
    assert [e.index for e in playable([entry(2), entry(0), entry(3)])] == [0]
    assert [e.index for e in playable([entry(1), entry(2)])] == []
    assert [e.index for e in playable([entry(1), entry(0), entry(2)])] == [0, 1, 2]


def test_playlist_grows_then_ends() -> None:
    open_list = playlist([entry(0, 1.24), entry(2, 3.0)], complete=False, target_seconds=10)
    lines = open_list.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in lines and "#EXT-X-TARGETDURATION:10" in lines
    # Blocking reload announced before the first segment, so a player asks for the next one at once.
    assert lines.index("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES") < lines.index("#EXTINF:1.240,")
    assert [ln for ln in lines if not ln.startswith("#")] == ["segments/0.ts"]
    assert "#EXTINF:1.240," in lines and "#EXT-X-ENDLIST" not in lines

    done = playlist([entry(0, 1.24), entry(1, 0.8), entry(2, 3.0)], complete=True, target_seconds=10)
    lines = done.splitlines()
    assert [ln for ln in lines if not ln.startswith("#")] == ["segments/0.ts", "segments/1.ts", "segments/2.ts"]
    assert lines.count("#EXT-X-DISCONTINUITY") == 2
    assert lines[-1] == "#EXT-X-ENDLIST"


def test_target_duration_covers_a_long_segment() -> None:
    text = playlist([entry(0, 12.4)], complete=True, target_seconds=10)
    assert "#EXT-X-TARGETDURATION:13" in text


def test_the_playlist_text_in_full() -> None:
    assert playlist([entry(1, 0.8), entry(0, 1.24)], complete=True, target_seconds=4) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-PLAYLIST-TYPE:EVENT\n"
        "#EXT-X-TARGETDURATION:4\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:1.240,\n"
        "segments/0.ts\n"
        "#EXT-X-DISCONTINUITY\n"
        "#EXTINF:0.800,\n"
        "segments/1.ts\n"
        "#EXT-X-ENDLIST\n"
    )


class FakeStore:
    """The two reads the blocking reload makes: a job's segment events and its row."""

    def __init__(self, job: JobRow) -> None:
        self.job = job
        self.segments: list[EventRow] = []
        self.reads = 0

    def events_of_kind(self, job_id: str, kind: str) -> list[EventRow]:
        self.reads += 1
        return list(self.segments)

    def get_job(self, job_id: str) -> tuple[JobRow, list[Any]]:
        return self.job, []

    def land(self, index: int) -> None:
        self.segments.append(EventRow(job_id=self.job.id, stage="animation", kind="segment",
                                      data={"segment": index, "seconds": 1.5}))


def blocking_reload(msn: int, block_seconds: float, meanwhile,
                    landed: tuple[int, ...] = ()) -> tuple[float, list[int], str, int]:
    """Run ``wait_for_segment`` while ``meanwhile(store, watchers)`` changes the job; seconds it held, what it
    answered, and how often it read the store."""
    async def run() -> tuple[float, list[int], str, int]:
        store = FakeStore(JobRow(id="job-1", status="running"))
        for index in landed:
            store.land(index)
        watchers = JobWatchers(asyncio.get_running_loop())
        changer = asyncio.create_task(meanwhile(store, watchers))
        start = time.monotonic()
        job, segments = await wait_for_segment(store, watchers, store.job, msn, block_seconds)  # type: ignore[arg-type]
        held = time.monotonic() - start
        await changer
        return held, [e.data["segment"] for e in segments], job.status, store.reads

    return asyncio.run(run())


def test_blocking_reload_answers_when_the_segment_lands() -> None:
    async def land_later(store: FakeStore, watchers: JobWatchers) -> None:
        await asyncio.sleep(0.3)
        store.land(1)
        watchers.poke("job-1")  # what the event consumer does once the event is stored

    held, segments, status, reads = blocking_reload(1, 5.0, land_later, landed=(0,))
    assert 0.25 < held < 1.0 and segments == [0, 1] and status == "running"
    assert reads == 2  # woken, not polling


def test_blocking_reload_answers_at_once_when_the_segment_is_there() -> None:
    async def nothing(store: FakeStore, watchers: JobWatchers) -> None:
        pass

    held, segments, _, _ = blocking_reload(0, 5.0, nothing, landed=(0, 1))
    assert held < 0.2 and segments == [0, 1]


def test_blocking_reload_ends_with_the_job_or_the_time() -> None:
    async def cancelled(store: FakeStore, watchers: JobWatchers) -> None:
        await asyncio.sleep(0.2)
        store.job.status = "cancelled"
        watchers.poke("job-1")

    held, segments, status, _ = blocking_reload(3, 5.0, cancelled)
    assert 0.15 < held < 1.0 and segments == [] and status == "cancelled"

    async def nothing(store: FakeStore, watchers: JobWatchers) -> None:
        pass

    held, segments, status, _ = blocking_reload(0, 0.3, nothing)
    assert 0.25 < held < 1.0 and segments == [] and status == "running"


def test_a_segment_after_a_gap_does_not_end_the_wait() -> None:
    async def out_of_order(store: FakeStore, watchers: JobWatchers) -> None:
        await asyncio.sleep(0.3)
        store.land(1)
        watchers.poke("job-1")

    held, segments, _, _ = blocking_reload(1, 5.0, out_of_order, landed=(0, 2))
    assert 0.25 < held < 1.0 and sorted(segments) == [0, 1, 2]
