"""Pauses and the characters nobody says: from marked-up text to speakable text with pause markers.

The language rules replace what means "pause here" (an ellipsis, a dash, an
emoji, a bullet, the end of a paragraph) with a private-use sentinel, one per
kind. ``assemble`` then turns every stretch between two words into plain
punctuation: a pause inside a sentence becomes a comma, a paragraph break a
full stop, punctuation standing on its own ("?!" between two sentences, "..."
on a line) joins the word before it, and a pause before the first or after the
last word goes. It returns the text and a ``Pause`` for each pause it kept,
so no sentence is ever only a pause. Symbols still left are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Sentinels, strongest last. Private-use characters: never in the text by then (``prepare`` drops them).
BEAT, DASH, ELLIPSIS, BREAK = "\ue000", "\ue001", "\ue002", "\ue003"
PAUSE_SECONDS = {BEAT: 0.15, DASH: 0.25, ELLIPSIS: 0.4, BREAK: 0.5}
PAUSE_KINDS = {BEAT: "beat", DASH: "dash", ELLIPSIS: "ellipsis", BREAK: "break"}
_SENTINELS = "".join(PAUSE_SECONDS)

_VULGAR_FRACTION = re.compile("[\u00bc-\u00be\u2150-\u215e]")
# Private use (the sentinels' range), marks that are said as nothing, ideographic variation selectors.
_DROPPED_FIRST = re.compile(
    "[\ue000-\uf8ff\u00a9\u00ae\u2122\u2120\u00ad\ufeff\U000e0100-\U000e01ef\U000f0000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Emoji, pictographs, arrows, dingbats, box drawing, bullets, and the joiners and selectors between them.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2190-\u21ff\u2300-\u23ff\u2500-\u27bf\u2b00-\u2bff\u2022\u2023\u2043"
    "\u200d\ufe00-\ufe0f\u20e3\U000e0020-\U000e007f]+"
)
_ELLIPSIS = re.compile(r"\.{2,}|\.\s\.\s\.|\u2026+|\u22ef+")
_DASHES = re.compile(r"\s+(?:-{1,3}|[\u2013\u2014\u2015]+)\s+|(?<!\d)[\u2014\u2015]+|[\u2014\u2015]+(?!\d)|-{2,}")
_GAP = re.compile(r"[\W_]+")

_TERMINALS = "?!."  # by preference, when several end one sentence
_MARKS = frozenset(".!?,;:\u3002\uff01\uff1f\uff0c\uff1b\uff1a\u3001")
_WIDE = {",": "\uff0c", ".": "\u3002", "!": "\uff01", "?": "\uff1f", ";": "\uff1b", ":": "\uff1a"}
_NARROW = {wide: narrow for narrow, wide in _WIDE.items()} | {"\u3001": ","}
_CLOSING = frozenset(")\uff09\u300d\u300f\u300b\u3011")
_OPENING = frozenset("(\uff08\u300c\u300e\u300a\u3010")
_QUOTES = frozenset("\"'\u201c\u201d\u2018\u2019")
_PLAIN_GAPS = frozenset({" ", ", ", ". ", "; ", ": ", "! ", "? ", "'", "-"})
_KEPT = _MARKS | _CLOSING | _OPENING | _QUOTES | {"-", "\u00b7"}


@dataclass(frozen=True)
class Pause:
    """Silence the written text asks for after ``text[:offset]``: at least ``seconds`` of it."""

    offset: int
    seconds: float
    kind: str  # "beat", "dash", "ellipsis" or "break"


def prepare(text: str) -> str:
    """Fold the text for the rules: NFKC, line ends, controls and marks dropped, emoji become beats."""
    text = _DROPPED_FIRST.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _VULGAR_FRACTION.sub(lambda m: " " + unicodedata.normalize("NFKC", m.group(0)).replace("\u2044", "/"), text)
    text = _CONTROL.sub(" ", unicodedata.normalize("NFKC", text))
    return _EMOJI.sub(f" {BEAT} ", text)


def mark_ellipses(text: str) -> str:
    """Ellipses (``...``, ``…``, ``……``) become pauses."""
    return _ELLIPSIS.sub(f" {ELLIPSIS} ", text)


def mark_dashes(text: str) -> str:
    """Dashes that set words apart (`` - ``, ``--``, ``—``, ``——``) become pauses; ranges must be read first."""
    return _DASHES.sub(f" {DASH} ", text)


def _is_cjk(char: str) -> bool:
    code = ord(char) if char else 0
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F


def _render_gap(gap: str, before: str, after: str) -> tuple[str, str | None, str]:
    """A stretch between two words as ``(punctuation, pause sentinel or None, separator + openers)``.

    ``before`` and ``after`` are the neighbouring characters ("" at either end of the text).
    """
    kinds = [c for c in gap if c in _SENTINELS]
    kept = "".join(c if c in _KEPT or unicodedata.category(c)[0] == "M" else " " for c in gap)
    wide = _is_cjk(before)
    if before and after and not kinds and not any(c.isspace() for c in kept) and sum(c in _MARKS for c in kept) < 2:
        mark = "".join(_WIDE.get(c, c) if wide else _NARROW.get(c, c) for c in kept)
        # A Chinese stop after a Latin word, before another: the narrow one wants its space ("MacBook. Thank").
        return mark, None, " " if any(c in _NARROW for c in kept) and not wide and not _is_cjk(after) else ""
    pieces = kept.split(" ")
    # After the last word nothing is attached to a next one: all of it floats.
    first, floating = pieces[0], "".join(pieces[1:-1] if after else pieces[1:])
    openers = "".join(c for c in pieces[-1] if c in _OPENING or c in _QUOTES) if len(pieces) > 1 and after else ""
    if not before:
        return "", None, openers
    marks = [_NARROW.get(c, c) for c in first + floating if c in _MARKS]
    kind = max(kinds, key=PAUSE_SECONDS.__getitem__) if kinds else None
    if kind is None and any(c in _MARKS for c in floating):
        kind = BREAK  # punctuation standing on its own: a pause, never a sentence
    terminal = next((t for t in _TERMINALS if t in marks), "")
    if not after:
        mark, kind = terminal or ("." if kind in (ELLIPSIS, BREAK) else ""), None
    elif kind == BREAK:
        mark = terminal or "."
    else:
        mark = terminal or next((m for m in marks if m in ",;:"), "," if kind else "")
    if kind is None and after and len(marks) < 2:
        mark = first  # punctuation attached to the word before stays as written
    else:
        closers = "".join(c for c in first if c in _CLOSING)
        mark = closers + mark + "".join(c for c in first if c in _QUOTES)
    if wide:
        mark = "".join(_WIDE.get(c, c) for c in mark)
    separator = "" if not after or (wide and _is_cjk(after)) else " "
    return mark, kind, separator + openers


def assemble(text: str) -> tuple[str, tuple[Pause, ...]]:
    """Speakable text from text with sentinels, and the pauses in it (see the module docstring)."""
    out: list[str] = []
    pauses: list[Pause] = []
    length = 0
    position = 0
    capital = True
    for match in _GAP.finditer(text):
        word = text[position:match.start()]
        if capital and word.islower():
            word = word[0].upper() + word[1:]  # a sentence starts with a capital, so that it is split there
        capital = capital and not word
        out.append(word)
        length += len(word)
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        gap = match.group(0)
        if before and after and gap in _PLAIN_GAPS and not _is_cjk(before):
            out.append(gap)  # the common case, as written: one space, or ", " and the like
            length += len(gap)
            position = match.end()
            continue
        mark, kind, tail = _render_gap(gap, before, after)
        out.append(mark)
        length += len(mark)
        if kind is not None:
            pauses.append(Pause(length, PAUSE_SECONDS[kind], PAUSE_KINDS[kind]))
            capital = kind == BREAK
        out.append(tail)
        length += len(tail)
        position = match.end()
    word = text[position:]
    out.append(word[0].upper() + word[1:] if capital and word.islower() else word)
    spoken = "".join(out)
    if not any(c.isalnum() for c in spoken):
        return "", ()  # quotes or brackets with nothing inside
    return spoken, tuple(pauses)
