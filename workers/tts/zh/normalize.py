"""Chinese text normalisation: digits and symbols become the words a speaker reads.

The Baker models know only pinyin syllables, so everything that is not a Chinese
character is either written out here or dropped by the phonemizer. Covered:
full-width forms, clock times (``10:30``), percentages, years before 年, decimals,
long digit strings (phone and ID numbers, read digit by digit), integers up to
10^16 (read with 十/百/千/万/亿) and a leading minus sign.
"""

from __future__ import annotations

import re
import unicodedata

DIGITS = "零一二三四五六七八九"
_SECTION_UNITS = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
_GROUP_UNITS = ("", "万", "亿", "万亿")
_MAX_INTEGER = 10**16 - 1

# Pause after a phrase, by the punctuation that ends it (seconds).
CLAUSE_PAUSE = 0.2
SENTENCE_PAUSE = 0.35
_SENTENCE_END = "。！？.!?…"
_PHRASE_END = re.compile(r"([。！？.!?…，、；：,;:\n]+)")

_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)")
_PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)%")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?=年)")
_DECIMAL = re.compile(r"(-?)(\d+)\.(\d+)")
_NEGATIVE = re.compile(r"(?<![0-9A-Za-z.])-(?=\d)")
_DIGIT_RUN = re.compile(r"\d+")


def read_digits(digits: str) -> str:
    """Digit by digit: ``"110"`` → 一一零."""
    return "".join(DIGITS[int(d)] for d in digits)


def _read_section(number: int) -> str:
    """Read 1..9999: 1024 → 一千零二十四."""
    words: list[str] = []
    gap = False
    for value, unit in _SECTION_UNITS:
        digit = number // value % 10
        if digit == 0:
            gap = bool(words)
            continue
        if gap:
            words.append("零")
            gap = False
        words.append(DIGITS[digit] + unit)
    return "".join(words)


def read_integer(number: int) -> str:
    """A whole number as it is read: 10010 → 一万零一十, 15 → 十五, 300000000 → 三亿."""
    if number < 0:
        return "负" + read_integer(-number)
    if number == 0:
        return DIGITS[0]
    if number > _MAX_INTEGER:
        return read_digits(str(number))
    groups = []
    while number:
        groups.append(number % 10000)
        number //= 10000
    words = ""
    gap = False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            gap = bool(words)
            continue
        if words and (gap or group < 1000):
            words += "零"
        words += _read_section(group) + _GROUP_UNITS[index]
        gap = False
    # 10..19 at the start are read 十, 十一, ... not 一十; a leading 2000 or 2万 is 两千, 两万.
    if words.startswith("一十"):
        return words[1:]
    if words[:2] in ("二千", "二万", "二亿"):
        return "两" + words[1:]
    return words


def _read_number(text: str) -> str:
    """An integer or decimal written in ASCII digits."""
    sign = "负" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    words = read_integer(int(whole))
    if fraction:
        words += "点" + read_digits(fraction)
    return sign + words


def _read_digit_run(match: re.Match[str]) -> str:
    digits = match.group(0)
    # Leading zeros and long runs are codes (phone numbers, IDs), not quantities.
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) > 8:
        return read_digits(digits)
    return read_integer(int(digits))


def _read_time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    return read_integer(hours) + "点" + (read_integer(minutes) + "分" if minutes else "")


def normalize(text: str) -> str:
    """Write out numbers and symbols in Chinese; other characters pass through unchanged."""
    # NFKC folds full-width digits, letters and ％ into their ASCII forms (and 。，stay as they are).
    text = unicodedata.normalize("NFKC", text)
    text = _TIME.sub(_read_time, text)
    text = _PERCENT.sub(lambda m: "百分之" + _read_number(m.group(1)), text)
    text = _YEAR.sub(lambda m: read_digits(m.group(1)), text)
    text = _DECIMAL.sub(lambda m: _read_number(m.group(0)), text)
    text = _NEGATIVE.sub("负", text)
    return _DIGIT_RUN.sub(_read_digit_run, text)


def split_phrases(text: str) -> list[tuple[str, float]]:
    """Split normalised text at clause and sentence punctuation.

    Returns ``(phrase, pause)`` pairs: the pause (seconds) follows the phrase;
    the last phrase has none. Empty phrases are left out.
    """
    parts = _PHRASE_END.split(text)
    phrases: list[tuple[str, float]] = []
    for index in range(0, len(parts), 2):
        phrase = parts[index].strip()
        if not phrase:
            continue
        ending = parts[index + 1] if index + 1 < len(parts) else ""
        pause = SENTENCE_PAUSE if any(mark in _SENTENCE_END for mark in ending) else CLAUSE_PAUSE
        phrases.append((phrase, pause))
    if phrases:
        phrases[-1] = (phrases[-1][0], 0.0)
    return phrases
