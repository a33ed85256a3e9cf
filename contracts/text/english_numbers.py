"""English readings of numbers, amounts, percentages, units, fractions and ranges.

Words come from num2words, in the American style: no "and" inside a number
("one hundred five"), no commas. ``NUMBER_RULES`` are applied in order by
``contracts.text.english``; dates, times and phone numbers go before them
(``contracts.text.english_dates``) since their digits would read as plain numbers.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from num2words import num2words

from contracts.text.rules import DEGREES, NUM, UNIT_PATTERN, UNITS, Rule

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MULTIPLIERS = {"k": "thousand", "m": "million", "mm": "million", "mn": "million", "b": "billion", "bn": "billion",
                "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion"}
_MULTIPLIER = r"(?:thousand|million|billion|trillion|bn|mn|mm|[kKmMbB])"
_DASH = r"\s?[-\u2013\u2014]\s?"


class Currency(NamedTuple):
    one: str
    many: str
    cent_one: str | None = None
    cent_many: str | None = None


_DOLLAR = Currency("dollar", "dollars", "cent", "cents")
_EURO = Currency("euro", "euros", "cent", "cents")
_POUND = Currency("pound", "pounds", "penny", "pence")
_YEN = Currency("yen", "yen")
CURRENCY_SYMBOLS = {"$": _DOLLAR, "€": _EURO, "£": _POUND, "¥": _YEN,
                    "₹": Currency("rupee", "rupees"), "₩": Currency("won", "won")}
CURRENCY_CODES = {"USD": _DOLLAR, "EUR": _EURO, "GBP": _POUND, "JPY": _YEN,
                  "CNY": Currency("yuan", "yuan"), "RMB": Currency("yuan", "yuan")}
_SYMBOL_CLASS = "[" + re.escape("".join(CURRENCY_SYMBOLS)) + "]"
_CODE = "|".join(CURRENCY_CODES)


def _words(text: str) -> str:
    """num2words output in the American style: no commas, no "and"."""
    return text.replace(",", "").replace(" and ", " ")


def cardinal(number: int) -> str:
    """A whole number in words: 105 → "one hundred five", -3 → "minus three"."""
    return _words(num2words(number, lang="en"))


def ordinal(number: int) -> str:
    """An ordinal in words: 21 → "twenty-first"."""
    return _words(num2words(number, lang="en", to="ordinal"))


def year(number: int) -> str:
    """A year as it is said: 1999 → "nineteen ninety-nine", 2005 → "two thousand five"."""
    return _words(num2words(number, lang="en", to="year"))


def digits(text: str) -> str:
    """The digits of ``text`` one by one: "007" → "zero zero seven"."""
    return " ".join(DIGIT_WORDS[int(c)] for c in text if c.isdigit())


def is_year(text: str) -> bool:
    """Whether a plain four-digit number reads as a year (1100 to 2099)."""
    return len(text) == 4 and text.isdigit() and 1100 <= int(text) <= 2099


def read_number(text: str) -> str:
    """A written number in words: "1,234.5", "007" (digit by digit), ".5"; very long ones digit by digit."""
    plain = text.replace(",", "")
    whole, dot, fraction = plain.partition(".")
    if not dot and len(whole) > 1 and whole.startswith("0"):
        return digits(whole)
    if len(whole) > 15 or ("," not in text and len(whole) > 9 and not whole.endswith("000")):
        words = digits(whole)  # an ID or a code, not an amount
    else:
        words = cardinal(int(whole)) if whole else ""
    if fraction:
        words = f"{words} point {digits(fraction)}".strip()
    return words


def _plural(words: str) -> str:
    """The plural of a number word: "eighty" → "eighties", "nineteen hundred" → "nineteen hundreds"."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _is_one(text: str) -> bool:
    return text.replace(",", "") == "1"


def _amount(number: str, currency: Currency) -> str:
    """An amount with its currency: 3.50 dollars → "three dollars and fifty cents"."""
    whole, _, fraction = number.replace(",", "").partition(".")
    if fraction and (currency.cent_one is None or len(fraction) > 2):
        return f"{read_number(number)} {currency.many}"
    cents = int((fraction + "0")[:2]) if fraction else 0
    units = int(whole or 0)
    parts = []
    if units or not cents:
        parts.append(f"{cardinal(units)} {currency.one if units == 1 else currency.many}")
    if cents and currency.cent_one and currency.cent_many:
        parts.append(f"{cardinal(cents)} {currency.cent_one if cents == 1 else currency.cent_many}")
    return " and ".join(parts)


def _money(match: re.Match[str], currency: Currency) -> str:
    low, high, multiplier = match.group("a"), match.group("b"), match.group("mult")
    sign = "minus " if match.group("neg") else ""
    if multiplier:
        scale = _MULTIPLIERS[multiplier.lower()]
        span = read_number(low) + (f" to {read_number(high)}" if high else "")
        return f"{sign}{span} {scale} {currency.many}"
    if high:
        if "." in low + high:
            return f"{sign}{_amount(low, currency)} to {_amount(high, currency)}"
        return f"{sign}{read_number(low)} to {read_number(high)} {currency.many}"
    return sign + _amount(low, currency)


def _range(match: re.Match[str]) -> str:
    """"a" (and "to b" when there is a "b") with minus signs said."""
    low = match.group("a")
    words = ("minus " if low.startswith(("-", "\u2212")) else "") + read_number(low.lstrip("-\u2212"))
    high = match.group("b")
    if high:
        words += " to " + ("minus " if high.startswith(("-", "\u2212")) else "") + read_number(high.lstrip("-\u2212"))
    return words


def _percent(match: re.Match[str]) -> str:
    return f"{_range(match)} percent"


def _degrees(match: re.Match[str]) -> str:
    scale = DEGREES[match.group("scale") or ""][0]
    unit = "degree" if _is_one(match.group("a")) and not match.group("b") else "degrees"
    return f"{_range(match)} {unit} {scale}".rstrip()


def _unit(match: re.Match[str]) -> str:
    unit = UNITS[match.group("unit")]
    # "a 5 km run" is a five-kilometer run: after "a" or "an" the unit is an adjective.
    adjective = re.search(r"\b[Aa]n?\s+$", match.string[max(0, match.start() - 4):match.start()]) is not None
    single = adjective or (_is_one(match.group("a")) and not match.group("b"))
    return f"{_range(match)} {unit.one if single else unit.many}"


_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group("n")), int(match.group("d"))
    whole = match.group("w")
    if (numerator, denominator) == (24, 7):
        return "twenty-four seven"
    if denominator in (0, 1) or (denominator > 20 and denominator not in (32, 64, 100)):
        words = f"{cardinal(numerator)} over {cardinal(denominator)}"
    else:
        one, many = _DENOMINATORS.get(denominator, (ordinal(denominator), _plural_ordinal(denominator)))
        if whole and numerator == 1:
            return f"{cardinal(int(whole))} and a {one}"
        words = f"{cardinal(numerator)} {one if numerator == 1 else many}"
    return f"{cardinal(int(whole))} and {words}" if whole else words


def _plural_ordinal(number: int) -> str:
    return ordinal(number) + "s"


def _span(match: re.Match[str]) -> str:
    """A range "a-b" or, before "=", a subtraction."""
    low, high = match.group("a"), match.group("b")
    joiner = " minus " if re.match(r"\s*=", match.string[match.end():]) else " to "
    if is_year(low) and (is_year(high) or len(high) == 2):
        return year(int(low)) + joiner + (year(int(high)) if is_year(high) else read_number(high))
    return read_number(low) + joiner + read_number(high)


def _decade(match: re.Match[str]) -> str:
    if match.group("c"):
        return _plural(year(int(match.group("c") + match.group("t") + "0")))
    return _plural(cardinal(int(match.group("s") + "0")))


def padded(match: re.Match[str], words: str) -> str:
    """``words`` with a space on each side where the match touches a letter or digit ("mp3" → "mp three")."""
    before = match.string[match.start() - 1:match.start()]
    after = match.string[match.end():match.end() + 1]
    return (" " if before.isalnum() else "") + words + (" " if after.isalnum() else "")


def _number(match: re.Match[str]) -> str:
    """Any number left: a year when it reads as one."""
    text = match.group(0)
    return padded(match, year(int(text)) if is_year(text) else read_number(text))


def _dotted(match: re.Match[str]) -> str:
    """A version or an address: "2.0.1" → "two dot zero dot one"."""
    return padded(match, " dot ".join(read_number(part) for part in match.group(0).split(".")))


_START = r"(?<![\w.,])"
_END = r"(?!\w|[.,]\d)"
NUMBER_RULES: list[Rule] = [
    (re.compile(rf"(?<!\w)(?P<neg>[-\u2212])?(?P<sym>{_SYMBOL_CLASS})\s?(?P<a>{NUM})"
                rf"(?:{_DASH}(?:to\s)?{_SYMBOL_CLASS}?(?P<b>{NUM}))?(?:\s?(?P<mult>{_MULTIPLIER})\b)?"),
     lambda m: _money(m, CURRENCY_SYMBOLS[m.group("sym")])),
    (re.compile(rf"{_START}(?P<neg>)(?P<a>{NUM})(?P<b>)(?P<mult>)\s?(?P<code>{_CODE})\b"),
     lambda m: _money(m, CURRENCY_CODES[m.group("code")])),
    (re.compile(rf"\b(?P<code>{_CODE})\s?(?P<neg>)(?P<a>{NUM})(?P<b>)(?P<mult>){_END}"),
     lambda m: _money(m, CURRENCY_CODES[m.group("code")])),
    (re.compile(rf"{_START}(?P<a>[-\u2212]?{NUM})(?:{_DASH}(?P<b>{NUM})\s?%?)?\s?%"), _percent),
    (re.compile(rf"{_START}(?P<a>[-\u2212]?{NUM})(?:{_DASH}(?P<b>[-\u2212]?{NUM}))?\s?°\s?"
                r"(?P<scale>[CF](?![A-Za-z]))?"), _degrees),
    (re.compile(rf"{_START}(?P<a>{NUM})(?:{_DASH}(?P<b>{NUM}))?\s?(?P<unit>{UNIT_PATTERN})(?![\w/])"), _unit),
    (re.compile(r"(?<![\w/.,])(?:(?P<w>\d+)\s)?(?P<n>\d{1,3})[/\u2044](?P<d>\d{1,3})(?![\w/]|[.,]\d)"), _fraction),
    (re.compile(rf"{_START}(?P<a>{NUM})\s?[-\u2013\u2014]\s?(?P<b>{NUM}){_END}"), _span),
    (re.compile(r"(?<![\w.,])(?:(?P<c>1[1-9]|20)(?P<t>\d)0|'?(?P<s>[1-9])0)'?s\b"), _decade),
    (re.compile(r"(?<![\w.,])(?P<n>\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal(int(m.group("n")))),
    (re.compile(r"(?<![\w.,)\]])[-\u2212](?=\.?\d)"), lambda m: "minus "),
    (re.compile(r"\d+(?:\.\d+){2,}"), _dotted),
    (re.compile(NUM), _number),
]
