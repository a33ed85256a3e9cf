"""English written text to English as it is said.

``say_links`` reads web addresses and e-mail addresses the way people say
them ("example dot com"; a long address with a query is said as its host only);
``to_spoken`` runs on every language span, so it applies to Chinese replies too.
``normalize_english`` then applies, in this order: dates, times and phone
numbers; abbreviations and titles ("Dr. Smith" → "Doctor Smith", "Elm St." →
"Elm Street", "e.g." → "for example"); symbols between numbers ("3 x 4",
"#1"); amounts, units, fractions, ranges and the remaining numbers; dashes as
pauses; and the symbols that are said ("&" → "and", "+" → "plus", "=" →
"equals", "@" → "at"). What it does not say is dropped later by
``contracts.text.pauses.assemble``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from contracts.text.english_dates import DATE_RULES, ends_sentence
from contracts.text.english_numbers import NUMBER_RULES, digits, padded
from contracts.text.pauses import BEAT, DASH, mark_dashes
from contracts.text.rules import Rule, apply_rules

_TLDS = "com|org|net|io|ai|dev|edu|gov|app|co|uk|de|fr|cn|jp|info|me|tv|us|ca|au|ly|gg|xyz|tech"
_URL = re.compile(
    r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'`\u2e80-\u9fff\uff00-\uffef]+"
    rf"|(?<![\w@.-])(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/[^\s<>\"'`\u2e80-\u9fff\uff00-\uffef]*)?"
)
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:[a-z]{2,})\b")
_TRAILING = ".,;:!?)]'\""
_SAID_SEPARATORS = {".": "dot", "-": "dash", "_": "underscore", "+": "plus"}
_PATH_WORD = re.compile(r"[A-Za-z][A-Za-z-]{0,19}")


def _say_name(name: str) -> str:
    """A host or user name: "dot" between parts, digits one by one, consonant-only parts spelled."""
    words = []
    for part in re.split(r"([.\-_+])", name):
        if part in _SAID_SEPARATORS:
            words.append(_SAID_SEPARATORS[part])
        elif part.isdigit():
            words.append(digits(part))
        elif part and len(part) <= 4 and part.isalpha() and not re.search("[aeiouy]", part, re.I):
            words.append(" ".join(part.upper()))  # "bbc" → "B B C"
        elif part:
            words.append(part)
    return " ".join(words)


def _say_url(match: re.Match[str]) -> str:
    written = match.group(0)
    stripped = written.rstrip(_TRAILING)
    parts = urlsplit(stripped if "://" in stripped else "http://" + stripped)
    host = (parts.hostname or "").removeprefix("www.")
    said = _say_name(host)
    segments = [segment for segment in parts.path.split("/") if segment]
    if not parts.query and not parts.fragment and 0 < len(segments) <= 2 and all(
            _PATH_WORD.fullmatch(segment) for segment in segments):
        said += "".join(" slash " + segment.replace("-", " ") for segment in segments)
    return padded(match, said + written[len(stripped):])


def _say_email(match: re.Match[str]) -> str:
    user, _, host = match.group(0).partition("@")
    return padded(match, f"{_say_name(user)} at {_say_name(host.lower())}")


def say_links(text: str) -> str:
    """Web and e-mail addresses as said: "https://www.example.com/a?b=c" → "example dot com"."""
    if "@" in text:
        text = _EMAIL.sub(_say_email, text)
    return _URL.sub(_say_url, text) if "." in text else text


# Before a name ("Dr. Smith", "St. Louis"); all but Dr and St also on their own ("Mr. and Mrs. Jones").
_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "St": "Saint", "Mt": "Mount",
           "Prof": "Professor", "Gen": "General", "Capt": "Captain", "Lt": "Lieutenant", "Sgt": "Sergeant",
           "Rev": "Reverend", "Hon": "Honorable", "Gov": "Governor", "Sen": "Senator", "Rep": "Representative",
           "Pres": "President", "Ft": "Fort"}
_UNDOTTED_TITLES = ("Mr", "Mrs", "Ms", "Dr", "St", "Mt")
# After a name, or not before one: "Elm St.", "John Smith Jr."
_SUFFIXES = {"Dr": "Drive", "St": "Street", "Ave": "Avenue", "Rd": "Road", "Blvd": "Boulevard", "Ln": "Lane",
             "Jr": "Junior", "Sr": "Senior", "Inc": "Incorporated", "Ltd": "Limited", "Corp": "Corporation"}
_LATIN = {"e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "etc": "et cetera", "vs.": "versus",
          "vs": "versus", "approx.": "approximately", "cf.": "compare", "a.k.a.": "also known as", "viz.": "namely"}


def _keep_stop(match: re.Match[str], words: str) -> str:
    return words + ("." if ends_sentence(match) else "")


ABBREVIATION_RULES: list[Rule] = [
    (re.compile(r"\b(?P<t>" + "|".join(_TITLES) + r")\.(?=\s+[A-Z])|\b(?P<u>" + "|".join(_UNDOTTED_TITLES)
                + r")(?=\s+[A-Z][a-z])"), lambda m: _TITLES[m.group("t") or m.group("u")]),
    (re.compile(r"\b(?P<t>" + "|".join(t for t in _TITLES if t not in _SUFFIXES) + r")\.(?=\s)"),
     lambda m: _TITLES[m.group("t")]),
    (re.compile(r"\b(?P<t>" + "|".join(_SUFFIXES) + r")\."), lambda m: _keep_stop(m, _SUFFIXES[m.group("t")])),
    (re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(k) for k in sorted(_LATIN, key=len, reverse=True))
                + r")(?![\w])"), lambda m: _keep_stop(m, _LATIN[m.group(0)]) if m.group(0).startswith("etc")
     else _LATIN[m.group(0)]),
    (re.compile(r"\b[Nn]o\.\s?(?=\d)"), lambda m: "number "),
    (re.compile(r"\bFigs?\.\s?(?=\d)"), lambda m: "figure "),
    (re.compile(r"\b(?:[A-Z]\.){2,}"),
     lambda m: " ".join(m.group(0).replace(".", "")) + ("." if not m.string[m.end():].strip() else "")),
]
EARLY_SYMBOL_RULES: list[Rule] = [
    (re.compile(r"(?<=\d)\s?[x\u00d7]\s?(?=\d)"), lambda m: " by " if "x" in m.group(0) else " times "),
    (re.compile(r"(?<=\d)\s?\*\s?(?=\d)"), lambda m: " times "),
    (re.compile(r"#(?=\d)"), lambda m: "number "),
    (re.compile(r"(?<!\w)[~\u2248]\s?(?=[-$\u20ac\u00a3\u00a5]?\d)"), lambda m: "about "),
]
LATE_SYMBOL_RULES: list[Rule] = [
    (re.compile(r"\s*(?:->|=>|<-)\s*"), lambda m: f" {BEAT} "),
    (re.compile(r"\s?\u00f7\s?"), lambda m: " divided by "),
    (re.compile(r"\s?\u00b1\s?"), lambda m: " plus or minus "),
    (re.compile(r"\s*&\s*"), lambda m: " and "),
    (re.compile(r"(?<=\w)\+\+"), lambda m: " plus plus "),
    (re.compile(r"\s*\+\s*"), lambda m: " plus "),
    (re.compile(r"\s*(?:!=|\u2260)\s*"), lambda m: " does not equal "),
    (re.compile(r"\s*(?:<=|\u2264)\s*"), lambda m: " less than or equal to "),
    (re.compile(r"\s*(?:>=|\u2265)\s*"), lambda m: " greater than or equal to "),
    (re.compile(r"\s*(?:==?|\u2261)\s*"), lambda m: " equals "),
    (re.compile(r"(?<=[\w\s])<(?=\s)"), lambda m: " less than "),
    (re.compile(r"(?<=[\w\s])>(?=\s)"), lambda m: " greater than "),
    (re.compile(r"\s*@\s*"), lambda m: " at "),
    (re.compile(r"\s?%"), lambda m: " percent"),
    (re.compile(r"\s?\u00b0"), lambda m: " degrees"),
    (re.compile(r"\u00a7\s?"), lambda m: "section "),
    (re.compile(r"(?i)\bw/(?=\s)"), lambda m: "with"),
    (re.compile(r"(?<=[a-z])/(?=[a-z])"), lambda m: " or "),
    (re.compile(r"\s\|\s"), lambda m: f" {BEAT} "),
]


_HAS_DIGIT = re.compile(r"\d")
_HAS_SYMBOL = re.compile("[-&+=<>!@%\u00b0\u00a7/|\u2260\u2264\u2265\u2261\u00f7\u00b1]")


def normalize_english(text: str) -> str:
    """English ``text`` (one language span, links already said) with everything written out as words."""
    has_digit = bool(_HAS_DIGIT.search(text))  # most sentences have none: skip the rules that need one
    if has_digit:
        text = apply_rules(DATE_RULES, text)
    text = apply_rules(ABBREVIATION_RULES, text)
    if has_digit:
        text = apply_rules(EARLY_SYMBOL_RULES, text)
        text = apply_rules(NUMBER_RULES, text)
    text = mark_dashes(text)
    return apply_rules(LATE_SYMBOL_RULES, text) if _HAS_SYMBOL.search(text) else text


__all__ = ["DASH", "normalize_english", "say_links"]
