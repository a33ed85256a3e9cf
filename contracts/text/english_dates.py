"""English readings of dates, clock times and phone numbers.

Dates: ISO ``2025-01-02`` and slashed ``1/2/2025`` are read "January second,
twenty twenty-five". A slashed date is month/day (the US order) unless its
first number cannot be a month (``13/1/2025`` is the thirteenth of January).
Month names with a day ("Jan 2", "2 January 2025") get the ordinal day.
Times: "10:30 a.m." → "ten thirty A M" (Whisper writes that back as 10:30
a.m.), "14:05" → "fourteen oh five", "10:00" → "ten o'clock". Phone numbers
(North American and ``+`` international) are read digit by digit, a comma
between groups. These rules run before the number rules, whose readings would
otherwise take the digits first.
"""

from __future__ import annotations

import re

from contracts.text.english_numbers import cardinal, digits, ordinal, year
from contracts.text.rules import Rule

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH_NAMES = {name.lower(): index for index, name in enumerate(MONTHS, 1)}
_MONTH_NAMES.update({name[:3].lower(): index for index, name in enumerate(MONTHS, 1)})
_MONTH_NAMES["sept"] = 9
_MONTH = r"(?P<month>" + "|".join(sorted((n.capitalize() for n in _MONTH_NAMES), key=len, reverse=True)) + r")"
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# How "a.m." and "p.m." are said (every spelling tried came back from Whisper as "a.m.").
MERIDIEM = {"a": "A M", "p": "P M"}
_MERIDIEM = r"(?P<ampm>[AaPp]\.?\s?[Mm]\b\.?)"


def ends_sentence(match: re.Match[str]) -> bool:
    """Whether a period the match swallowed also ended the sentence (end of text or a capital next)."""
    if not match.group(0).endswith("."):
        return False
    rest = match.string[match.end():]
    return not rest.strip() or bool(re.match(r"\s+[A-Z]", rest))


def say_date(month: int, day: int, year_number: int | None = None) -> str | None:
    """"January second, twenty twenty-five"; None when ``month``/``day`` is no date."""
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]):
        return None
    words = f"{MONTHS[month - 1]} {ordinal(day)}"
    return f"{words}, {year(year_number)}" if year_number is not None else words


def _iso_date(match: re.Match[str]) -> str:
    said = say_date(int(match.group("m")), int(match.group("d")), int(match.group("y")))
    return said or match.group(0)


def _slashed_date(match: re.Match[str]) -> str:
    first, second, written_year = int(match.group("a")), int(match.group("b")), match.group("y")
    year_number = int(written_year) + (2000 if len(written_year) == 2 else 0)
    month, day = (second, first) if first > 12 else (first, second)
    return say_date(month, day, year_number) or match.group(0)


def _named_date(match: re.Match[str]) -> str:
    month = _MONTH_NAMES[match.group("month").lower()]
    day = int(match.group("d"))
    written_year = match.group("y")
    said = say_date(month, day, int(written_year) if written_year else None)
    if said is None:
        return match.group(0)
    if match.group("dayfirst"):
        month_name, _, rest = said.partition(" ")
        day_words, _, year_words = rest.partition(", ")
        said = f"the {day_words} of {month_name}" + (f", {year_words}" if year_words else "")
    return said


def _clock(hours: int, minutes: int, meridiem: str | None) -> str | None:
    """A clock time in words; None when it is no time."""
    if minutes > 59 or hours > 23 or (meridiem and not 1 <= hours <= 12):
        return None
    if meridiem:
        words = cardinal(hours) if minutes == 0 else f"{cardinal(hours)} {_minutes(minutes)}"
        return f"{words} {MERIDIEM[meridiem]}"
    if minutes == 0:
        return f"{cardinal(hours)} o'clock" if 1 <= hours <= 12 else f"{cardinal(hours)} hundred"
    return f"{cardinal(hours)} {_minutes(minutes)}"


def _minutes(minutes: int) -> str:
    return f"oh {cardinal(minutes)}" if minutes < 10 else cardinal(minutes)


def _time(match: re.Match[str]) -> str:
    ampm = match.group("ampm")
    meridiem = ampm[0].lower() if ampm else None
    minutes = match.group("m")
    said = _clock(int(match.group("h")), int(minutes) if minutes else 0, meridiem)
    if said is None or (minutes is None and meridiem is None):
        return match.group(0)
    seconds = match.groupdict().get("s")
    if seconds:
        said += f" and {cardinal(int(seconds))} seconds"
    return said + ("." if ends_sentence(match) else "")


def _phone(match: re.Match[str]) -> str:
    """Digit by digit, a comma between groups: "+1 (555) 123-4567" → "plus one, five five five, ..."."""
    written = match.group(0)
    groups = ", ".join(digits(group) for group in re.findall(r"\d+", written))
    return ("plus " if written.startswith("+") else "") + groups


_AFTER = r"(?![\w/]|[.,:-]\d)"
DATE_RULES: list[Rule] = [
    (re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}" + _AFTER), _phone),
    (re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]\(?\d{1,4}\)?){2,5}" + _AFTER), _phone),
    (re.compile(r"(?<![\w./-])(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _AFTER), _iso_date),
    (re.compile(r"(?<![\w./-])(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})" + _AFTER),
     _slashed_date),
    (re.compile(rf"\b(?P<dayfirst>)?{_MONTH}\.?\s(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s(?P<y>\d{{4}}))?(?![\w:])"),
     _named_date),
    (re.compile(rf"(?<![\w.,])(?P<dayfirst>(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?){_MONTH}\b"
                r"(?:,?\s(?P<y>\d{4})(?!\w))?"), _named_date),
    (re.compile(rf"(?<![\w:.])(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?::(?P<s>\d{{2}}))?(?:\s?{_MERIDIEM})?(?![\w:])"),
     _time),
    (re.compile(rf"(?<![\w:.,])(?P<h>\d{{1,2}})(?P<m>)\s?{_MERIDIEM}"), _time),
    # What is left of "a:b" is a ratio: "16:9" → "sixteen to nine".
    (re.compile(r"(?<![\w:.,])(?P<a>\d+):(?P<b>\d+)(?![\w:]|[.,]\d)"),
     lambda m: f"{cardinal(int(m.group('a')))} to {cardinal(int(m.group('b')))}"),
]
