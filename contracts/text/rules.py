"""What the language rules share: the rule type, the shape of a written number, the units.

A rule is a compiled pattern and what replaces each match; a language applies
its rules in order with ``apply_rules``. ``UNITS`` is one table for both
languages and for script detection (a unit after a number
goes with the number, "5km" inside Chinese text). Keys are case-sensitive as
written ("MB" is megabytes, "mb" is not a unit here). Units a number is easily
mistaken with are left out: "in" (the word), "s" ("the 1990s"), "t", "l".
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def apply_rules(rules: list[Rule], text: str) -> str:
    """``text`` with each rule applied in turn, every match replaced."""
    for pattern, replace in rules:
        text = pattern.sub(replace, text)
    return text


class Unit(NamedTuple):
    """How a unit is said: English singular and plural; Mandarin (None: kept as written)."""

    one: str
    many: str
    zh: str | None


def _unit(one: str, many: str | None = None, zh: str | None = None) -> Unit:
    return Unit(one, many or one + "s", zh)


UNITS: dict[str, Unit] = {
    "km": _unit("kilometer", zh="公里"),
    "m": _unit("meter", zh="米"),
    "cm": _unit("centimeter", zh="厘米"),
    "mm": _unit("millimeter", zh="毫米"),
    "mi": _unit("mile", zh="英里"),
    "ft": _unit("foot", "feet", zh="英尺"),
    "yd": _unit("yard", zh="码"),
    "kg": _unit("kilogram", zh="公斤"),
    "g": _unit("gram", zh="克"),
    "mg": _unit("milligram", zh="毫克"),
    "lb": _unit("pound", zh="磅"),
    "lbs": _unit("pound", zh="磅"),
    "oz": _unit("ounce", zh="盎司"),
    "L": _unit("liter", zh="升"),
    "ml": _unit("milliliter", zh="毫升"),
    "mL": _unit("milliliter", zh="毫升"),
    "km/h": _unit("kilometer per hour", "kilometers per hour", zh="公里每小时"),
    "kph": _unit("kilometer per hour", "kilometers per hour", zh="公里每小时"),
    "mph": _unit("mile per hour", "miles per hour", zh="英里每小时"),
    "m/s": _unit("meter per second", "meters per second", zh="米每秒"),
    "h": _unit("hour", zh="小时"),
    "hr": _unit("hour", zh="小时"),
    "hrs": _unit("hour", zh="小时"),
    "min": _unit("minute", zh="分钟"),
    "sec": _unit("second", zh="秒"),
    "ms": _unit("millisecond", zh="毫秒"),
    "KB": _unit("kilobyte"),
    "kB": _unit("kilobyte"),
    "MB": _unit("megabyte"),
    "GB": _unit("gigabyte"),
    "TB": _unit("terabyte"),
    "Mbps": _unit("megabit per second", "megabits per second"),
    "Gbps": _unit("gigabit per second", "gigabits per second"),
    "Hz": _unit("hertz", "hertz", zh="赫兹"),
    "kHz": _unit("kilohertz", "kilohertz", zh="千赫"),
    "MHz": _unit("megahertz", "megahertz", zh="兆赫"),
    "GHz": _unit("gigahertz", "gigahertz"),
    "W": _unit("watt", zh="瓦"),
    "kW": _unit("kilowatt", zh="千瓦"),
    "kWh": _unit("kilowatt hour", zh="千瓦时"),
    "V": _unit("volt", zh="伏"),
    "mAh": _unit("milliamp hour", zh="毫安时"),
    "x": _unit("times", "times", zh="倍"),
}

# A number as written, in either language: 1,234,567.89 / 3.14 / 42 / .5
NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"

# Longest first, so that "km/h" wins over "km" and "mAh" over "m".
UNIT_PATTERN = "|".join(re.escape(key) for key in sorted(UNITS, key=len, reverse=True))

# Temperatures and angles: what follows "°".
DEGREES = {"C": ("Celsius", "摄氏度"), "F": ("Fahrenheit", "华氏度"), "": ("", "度")}
