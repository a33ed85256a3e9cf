"""The HLS playlist of a streamed job: the segments that have landed, in order, as they land.

An ``EVENT`` playlist only grows; a player starts on the first segment and polls
for more. Only the unbroken run of segments from the first one is listed, so a
segment that lands early never plays before the ones it follows. Each segment
is its own MPEG-TS file whose timestamps start afresh, hence a discontinuity tag
between segments. ``#EXT-X-ENDLIST`` closes the playlist once every segment has
landed.

The playlist announces blocking reload (``#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES``):
a player asks for ``?_HLS_msn=N`` and the request is held until segment ``N`` is
listed (``coordinator.streams.wait_for_segment``), so a new segment reaches the
player when it lands rather than at the player's next poll, a target duration later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class PlaylistEntry:
    index: int
    seconds: float
    uri: str


def playable(entries: Iterable[PlaylistEntry]) -> list[PlaylistEntry]:
    """The entries from index 0 up to the first gap, in order."""
    by_index = {e.index: e for e in entries}
    run: list[PlaylistEntry] = []
    while len(run) in by_index:
        run.append(by_index[len(run)])
    return run


def playlist(entries: Iterable[PlaylistEntry], complete: bool, target_seconds: float) -> str:
    """The m3u8 text. ``target_seconds`` is the longest a segment is expected to be."""
    run = playable(entries)
    target = max([math.ceil(target_seconds)] + [math.ceil(e.seconds) for e in run])
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-PLAYLIST-TYPE:EVENT",
             f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
             "#EXT-X-MEDIA-SEQUENCE:0"]
    for entry in run:
        if entry.index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [f"#EXTINF:{entry.seconds:.3f},", entry.uri]
    if complete:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
