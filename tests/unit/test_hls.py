"""The HLS playlist of a streamed job."""

from __future__ import annotations

import pytest

from coordinator.hls import PlaylistEntry, playable, playlist

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
