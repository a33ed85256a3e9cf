"""Sentence splitting for English and Chinese text, for speech synthesis and streamed replies.

``split_sentences`` cuts after sentence punctuation of both scripts: ``. ! ?``
and the ellipsis in Latin text, ``。！？`` (and their half-width forms typed in
Chinese text) in Chinese. Closing quotes, brackets and Markdown emphasis after
the stop stay with the sentence they close (``**Sure!** Here``). What does not
end a sentence:

- a period inside a token: decimals ``3.14``, ``e.g.x``, ``U.S.A``, version numbers;
- a period after a title or a Latin abbreviation: ``Dr. Smith``, ``e.g. this``, ``No. 5``;
- a period after an initial: ``J. Smith`` (but ``So am I.`` ends);
- a number that starts a list item: ``1. First``;
- any Latin stop followed by a lower-case word: ``at 5 p.m. today``, ``Wait... what?``.

Commas never split (``1,000``). A blank line ends a sentence even without
punctuation. ``language`` ("en", "zh-CN", ...) is a hint: with a Chinese,
Japanese or Cantonese tag, an ASCII ``!``/``?``/``.`` directly followed by a
CJK character ends a sentence too (without the tag only ``!`` and ``?`` do).
"""

from __future__ import annotations

import re

# Closing punctuation that may follow a stop and still belongs to the sentence before it:
# quotes, brackets, and the Markdown emphasis a chat model closes after a stop ("**Sure!**").
_CLOSERS = "\"'\u201d\u2019\u300d\u300f\uff09\u3011)]*_~`"
# Sentence punctuation: a run of Latin stops (with the ellipsis), or a run of CJK ones.
_STOP = re.compile(
    r"(?:[.!?\u2026]+|[\u3002\uff01\uff1f\uff0e]+[!?\u3002\uff01\uff1f\uff0e\u2026]*)"
    "[" + re.escape(_CLOSERS) + "]*"
)
_CJK_STOPS = "\u3002\uff01\uff1f\uff0e"
_PARAGRAPH = re.compile(r"\n\s*\n")

# Words whose trailing period does not end a sentence ("Dr. Smith", "e.g. this").
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "ft", "rev", "hon", "gen", "col",
    "capt", "lt", "sgt", "gov", "sen", "rep", "pres", "vs", "e.g", "i.e", "cf", "approx", "fig", "figs",
    "vol", "ca", "dept", "est", "al",
})
# Abbreviations that stand before a number: "No. 5", "pp. 12".
_NUMBER_ABBREVIATIONS = frozenset({"no", "nos", "nr", "pp", "p", "art", "sec", "ch", "eq", "op"})
_CJK_LANGUAGES = frozenset({"zh", "ja", "yue", "cmn", "wuu"})


def is_cjk(char: str) -> bool:
    """Whether ``char`` is a CJK ideograph, kana, or CJK punctuation."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
        or 0x3000 <= code <= 0x30FF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFF60
    )


def primary_language(language: str | None) -> str | None:
    """The primary subtag of a language tag, lower-case: "zh-CN" → "zh", "en_US" → "en"."""
    if not language:
        return None
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower() or None


def _is_boundary(text: str, match: re.Match[str], sentence_start: int, cjk_text: bool) -> bool:
    """Whether the punctuation in ``match`` ends the sentence that began at ``sentence_start``."""
    stop = match.group(0)
    if stop[0] in _CJK_STOPS:
        return True
    rest = text[match.end():]
    if not rest:
        return True
    if not rest[0].isspace():
        # "3.14", "e.g.x", "U.S.A", "Yahoo!Mail": inside a token. In Chinese text
        # half-width stops are typed without a space before the next sentence.
        if not is_cjk(rest[0]):
            return False
        return stop[0] in "!?" or (cjk_text and stop.rstrip(_CLOSERS) == ".")
    following = rest.lstrip()
    if not following:
        return True
    if following[0].islower():
        return False  # "at 5 p.m. today", "Wait... what?"
    if stop[0] != "." or stop.rstrip(_CLOSERS) != ".":
        return True  # "!", "?", "...", "?!"
    word = re.search(r"([\w.]+)$", text[:match.start()])
    if word is None:
        return True
    token = word.group(1).lower()
    if token in ABBREVIATIONS:
        return False
    if token in _NUMBER_ABBREVIATIONS and following[0].isdigit():
        return False  # "No. 5"
    if len(token) == 1 and token.isalpha() and word.group(1).isupper() and token != "i":
        return False  # an initial: "J. Smith"
    if token.isdigit() and len(token) <= 3 and not text[sentence_start:word.start()].strip():
        return False  # a list item: "1. First"
    return True


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Split plain text into sentences, stripped of surrounding space; the last one may lack an ending."""
    cjk_text = primary_language(language) in _CJK_LANGUAGES
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        start = 0
        for match in _STOP.finditer(paragraph):
            if _is_boundary(paragraph, match, start, cjk_text):
                sentence = paragraph[start:match.end()].strip()
                if sentence:
                    sentences.append(sentence)
                start = match.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences
