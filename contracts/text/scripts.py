"""Which languages a text is written in, told by the Unicode script of its letters.

Script detection is all the farm needs to route speech: Latin letters count as
English (the only Latin-script voice we have), Han ideographs and Bopomofo as
Mandarin, kana as Japanese (a text with kana counts its Han as Japanese too),
Hangul as Korean; other scripts are named by a language where the script has
essentially one (``ar``, ``he``, ``el``, ``th``, ...) and by the script's name
otherwise (``cyrillic``, ``devanagari``). Digits, punctuation, symbols and
spaces belong to no script: ``language_spans`` gives them to a neighbour.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from contracts.text.rules import UNITS

# The first word of a letter's Unicode name, for scripts that stand for one language.
_SCRIPT_LANGUAGES = {
    "LATIN": "en", "CJK": "zh", "BOPOMOFO": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko",
    "ARABIC": "ar", "HEBREW": "he", "GREEK": "el", "THAI": "th", "ARMENIAN": "hy", "GEORGIAN": "ka",
    "KHMER": "km", "LAO": "lo", "SINHALA": "si", "TAMIL": "ta", "TELUGU": "te", "KANNADA": "kn",
    "MALAYALAM": "ml", "GUJARATI": "gu", "GURMUKHI": "pa", "MYANMAR": "my", "TIBETAN": "bo",
}
# Scripts whose every character is a word (or a syllable): one letter is enough to count.
_SYLLABIC = frozenset({"zh", "ja", "ko"})


@dataclass(frozen=True)
class Span:
    """A run of ``text`` in one language: ``text == whole[start:end]``."""

    language: str
    text: str
    start: int
    end: int


@lru_cache(maxsize=4096)
def script_language(char: str) -> str | None:
    """The language (or script name) of a letter; None for digits, punctuation, symbols and spaces."""
    if char.isascii():
        return "en" if char.isalpha() else None
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    if name.startswith(("FULLWIDTH LATIN", "HALFWIDTH LATIN")):
        return "en"
    if name.startswith(("HALFWIDTH KATAKANA", "HALFWIDTH HANGUL")):
        return "ja" if "KATAKANA" in name else "ko"
    script = name.split(" ", 1)[0]
    return _SCRIPT_LANGUAGES.get(script, script.lower() or None)


def _letter_runs(text: str) -> list[tuple[str | None, int, int]]:
    """``(language or None, start, end)`` for each maximal run of one script (None: no letters)."""
    runs: list[tuple[str | None, int, int]] = []
    for index, char in enumerate(text):
        language = script_language(char)
        if runs and runs[-1][0] == language:
            runs[-1] = (language, runs[-1][1], index + 1)
        else:
            runs.append((language, index, index + 1))
    return runs


def languages_in(text: str) -> tuple[str, ...]:
    """The languages written in ``text``, most letters first; () when it has no letters.

    A language counts with a word of two letters or more (one character of a
    syllabic script: Han, kana, Hangul), so a stray "α" in an English sentence
    does not; when nothing reaches that, every language with a letter counts.
    """
    if text.isascii():
        return ("en",) if any(c.isalpha() for c in text) else ()
    letters: Counter[str] = Counter()
    words: set[str] = set()
    runs = _letter_runs(text)
    has_kana = any(language == "ja" for language, _, _ in runs)
    for language, start, end in runs:
        if language is None:
            continue
        if language == "zh" and has_kana:
            language = "ja"
        letters[language] += end - start
        if end - start >= 2 or language in _SYLLABIC:
            words.add(language)
    ranked = [language for language, _ in letters.most_common()]
    return tuple(language for language in ranked if language in words) or tuple(ranked)


def _is_unit_after_number(text: str, start: int, end: int) -> bool:
    """Whether the Latin run ``text[start:end]`` is a unit written after a number ("5km", "3 kg", "20°C")."""
    before = text[max(0, start - 2):start].rstrip()
    unit = text[start:end]
    return (unit in UNITS and before[-1:].isdigit()) or (unit in ("C", "F") and before[-1:] == "°")


def _assign(runs: list[tuple[str | None, int, int]], text: str, default: str) -> list[tuple[str, int, int]]:
    """Give each run without letters to a neighbour (see ``language_spans``)."""
    units = [(None if language == "en" and _is_unit_after_number(text, start, end) else language, start, end)
             for language, start, end in runs]
    runs = []
    for language, start, end in units:
        if runs and runs[-1][0] is None and language is None:
            runs[-1] = (None, runs[-1][1], end)
        else:
            runs.append((language, start, end))
    spans: list[tuple[str, int, int]] = []
    for index, (language, start, end) in enumerate(runs):
        if language is not None:
            spans.append((language, start, end))
            continue
        before = spans[-1][0] if spans else None
        after = next((lang for lang, s, e in runs[index + 1:] if lang is not None), None)
        if before is None or after is None or before == after:
            spans.append((before or after or default, start, end))
            continue
        piece = text[start:end]
        if not any(c.isspace() for c in piece):
            # Touching both sides: a number between Chinese and Latin is read in Chinese.
            spans.append(("zh" if "zh" in (before, after) else before, start, end))
            continue
        # The part after the last space touches the next language; the rest stays with the one before.
        cut = max(i for i, c in enumerate(piece) if c.isspace()) + 1
        spans.append((before, start, start + cut))
        if cut < end - start:
            spans.append((after, start + cut, end))
    return spans


def language_spans(text: str, default: str = "en", merge_below: int = 0) -> list[Span]:
    """Cut ``text`` into runs of one language each, in order; joined they give ``text`` back.

    Characters without a script (digits, punctuation, spaces) join the language
    next to them: the one before, unless the run touches the next language
    without a space ("价格是20元", "iPhone 15很好": the number is read in
    Chinese). A unit after a number goes with the number ("5km"). Text with no
    letters at all is one span of ``default``. A span of another language
    with fewer than ``merge_below`` letters, next to a span of ``default``,
    joins ``default`` ("我有OK的感觉" stays Chinese with ``merge_below=3``):
    pass it only when the voice of ``default`` also speaks that script.
    """
    if not text:
        return []
    if default == "en" and text.isascii():  # the common case: all English
        return [Span("en" if any(c.isalpha() for c in text) else default, text, 0, len(text))]
    runs = _letter_runs(text)
    has_kana = any(language == "ja" for language, _, _ in runs)
    if has_kana:
        runs = [("ja" if language == "zh" else language, s, e) for language, s, e in runs]
    spans = _join(_assign(runs, text, default))
    if merge_below > 0:
        spans = _join(_merge_short(spans, text, default, merge_below))
    return [Span(language, text[start:end], start, end) for language, start, end in spans]


def _join(spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Neighbouring spans of one language as one."""
    joined: list[tuple[str, int, int]] = []
    for language, start, end in spans:
        if joined and joined[-1][0] == language:
            joined[-1] = (language, joined[-1][1], end)
        else:
            joined.append((language, start, end))
    return joined


def _merge_short(spans: list[tuple[str, int, int]], text: str, default: str,
                 merge_below: int) -> list[tuple[str, int, int]]:
    """Spans not in ``default`` with fewer than ``merge_below`` letters, next to ``default``, become ``default``."""
    merged = list(spans)
    for index, (language, start, end) in enumerate(spans):
        if language == default or sum(script_language(c) is not None for c in text[start:end]) >= merge_below:
            continue
        neighbours = [spans[i][0] for i in (index - 1, index + 1) if 0 <= i < len(spans)]
        if default in neighbours:
            merged[index] = (default, start, end)
    return merged
