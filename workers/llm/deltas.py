"""Turning a growing model output into clean text deltas.

Backends see the reply grow token by token (or chunk by chunk from a server).
``ReplyText`` decides what of it can be sent on at each point, so that the joined
deltas are exactly the final reply: the reply without leading or trailing
whitespace, cut before the first stop string. Text that may still turn into a
stop string (``"\\nUs"`` when ``"\\nUser:"`` is a stop), trailing whitespace and
an unfinished UTF-8 character (``"\\ufffd"``) are held back until they are decided.
"""

from __future__ import annotations

from typing import Sequence

REPLACEMENT_CHAR = "\ufffd"


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    positions = [text.find(s) for s in stop if s]
    found = [p for p in positions if p >= 0]
    return text[: min(found)] if found else text


def partial_stop_length(text: str, stop: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is the beginning of a stop string."""
    longest = 0
    for s in stop:
        for size in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:size]):
                longest = size
                break
    return longest


class ReplyText:
    """What of a growing reply has been sent, and what may be sent next."""

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self.stop = tuple(s for s in stop if s)
        self.sent = ""
        self.stopped = False

    def update(self, text: str) -> str:
        """The delta to send now that the whole output so far is ``text``.

        Sets ``stopped`` once a stop string has appeared: nothing after it counts.
        """
        if self.stopped:
            return ""
        cut = cut_at_stop(text, self.stop)
        if len(cut) < len(text):
            self.stopped = True
            return self._advance(cut.strip())
        visible = text.lstrip()
        visible = visible[: len(visible) - partial_stop_length(visible, self.stop)]
        return self._advance(visible.rstrip(REPLACEMENT_CHAR).rstrip())

    def finish(self, text: str) -> str:
        """The last delta once the output is complete."""
        if self.stopped:
            return ""
        self.stopped = True
        return self._advance(cut_at_stop(text, self.stop).strip())

    def _advance(self, visible: str) -> str:
        # Sent text cannot be taken back; a decoder that rewrites its past only loses the rewrite.
        if len(visible) <= len(self.sent) or not visible.startswith(self.sent):
            return ""
        delta, self.sent = visible[len(self.sent):], visible
        return delta
