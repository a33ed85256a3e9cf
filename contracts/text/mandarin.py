"""Mandarin written text to Mandarin as it is said.

Numbers are read with cn2an (3.14 → 三点一四, 10010 → 一万零一十), with the
spoken 两 where a speaker uses it (两千, 两个, 两点). In order: phone numbers
digit by digit (mobile in 3-4-4 groups; 1 as 幺 on request); dates (2025年 →
二零二五年, 2025-01-02 → 二零二五年一月二日, 1月2日); clock times (10:30 →
十点三十分); amounts (¥20 → 二十元, $5 → 五美元, 3.5元 → 三点五元);
percentages (50% → 百分之五十); temperatures (-5°C → 零下五摄氏度); units with a
Chinese name (5km → 五公里); fractions (3/4 → 四分之三); ranges (1-5 → 一到五);
then every other number. Latin words are left as they are: ``to_spoken`` gives
them to the English rules and the caller to an English voice.
"""

from __future__ import annotations

import re

import cn2an

from contracts.text.pauses import mark_dashes
from contracts.text.rules import DEGREES, NUM, UNIT_PATTERN, UNITS, Rule, apply_rules

DIGITS = "零一二三四五六七八九"
_CURRENCIES = {"¥": "元", "$": "美元", "€": "欧元", "£": "英镑", "₩": "韩元", "₹": "卢比"}
_CURRENCY = "[" + re.escape("".join(_CURRENCIES)) + "]"
_MEASURE_WORDS = "个只本位次天年周件条张台辆把双对项门份岁种瓶杯碗块元倍名家间场点分"
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MAX_CN2AN_DIGITS = 16


def read_digits(text: str, yao: bool = False) -> str:
    """Digit by digit: "110" → 一一零 (幺幺零 with ``yao``, as phone numbers are read)."""
    table = DIGITS.replace("一", "幺") if yao else DIGITS
    return "".join(table[int(c)] for c in text if c.isdigit())


def read_number(text: str) -> str:
    """A written number: "1,234.5" → 一千二百三十四点五; codes (leading zero, very long) digit by digit."""
    plain = text.replace(",", "")
    whole, _, fraction = plain.partition(".")
    if len(whole) > 1 and whole.startswith("0") and not fraction:
        return read_digits(whole)
    if len(whole) > _MAX_CN2AN_DIGITS or ("," not in text and len(whole) > 9 and not whole.endswith("000")):
        words = read_digits(whole)
    else:
        words = cn2an.an2cn(whole or "0")
        if words[:2] in ("二千", "二万", "二亿"):
            words = "两" + words[1:]
    return words + ("点" + read_digits(fraction) if fraction else "")


def _range(match: re.Match[str]) -> str:
    """"a" or "a到b", minus signs as 负."""
    def one(written: str) -> str:
        return ("负" if written.startswith("-") else "") + read_number(written.lstrip("-"))
    low, high = match.group("a"), match.group("b")
    return one(low) + ("到" + one(high) if high else "")


def _phone(match: re.Match[str], yao: bool) -> str:
    written = match.group(0)
    groups = re.findall(r"\d+", written)
    prefix = ""
    if written.startswith("+"):
        prefix, groups = "加" + read_digits(groups[0]) + "，", groups[1:]
    if len(groups) == 1 and len(groups[0]) == 11:
        groups = [groups[0][:3], groups[0][3:7], groups[0][7:]]
    return prefix + "，".join(read_digits(group, yao) for group in groups)


def _date(match: re.Match[str]) -> str:
    year, month, day = match.group("y"), int(match.group("m")), int(match.group("d"))
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]):
        return match.group(0)
    return f"{read_digits(year)}年{cn2an.an2cn(str(month))}月{cn2an.an2cn(str(day))}日"


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group("h")), int(match.group("m"))
    if hours > 23 or minutes > 59:
        return match.group(0)
    said = ("两" if hours == 2 else cn2an.an2cn(str(hours))) + "点"
    if minutes:
        said += ("零" if minutes < 10 else "") + cn2an.an2cn(str(minutes)) + "分"
    seconds = match.group("s")
    return said + (cn2an.an2cn(str(int(seconds))) + "秒" if seconds and int(seconds) else "")


def _amount(written: str) -> str:
    """An amount of money: trailing zeros of the cents are not said (3.50 → 三点五)."""
    whole, dot, fraction = written.partition(".")
    fraction = fraction.rstrip("0")
    return read_number(whole + ("." + fraction if fraction else "") if whole or fraction else "0")


def _money(match: re.Match[str]) -> str:
    sign = "负" if match.group("neg") else ""
    high = match.group("b")
    said = _amount(match.group("a")) + ("到" + _amount(high) if high else "")
    return sign + said + (match.group("mult") or "") + _CURRENCIES[match.group("sym")]


def _temperature(match: re.Match[str]) -> str:
    low = match.group("a")
    scale = DEGREES[match.group("scale") or ""][1]
    if low.startswith("-") and not match.group("b"):
        return "零下" + read_number(low[1:]) + scale
    return _range(match) + scale


def _unit(match: re.Match[str]) -> str:
    unit = match.group("unit")
    said = UNITS[unit].zh
    number = _range(match)
    if unit == "x" and number == "二":
        number = "两"
    return number + (said if said is not None else unit)


def _years_or_range(match: re.Match[str]) -> str:
    low, high = match.group("a"), match.group("b")
    if len(low) == len(high) == 4 and match.string[match.end():].lstrip().startswith("年"):
        return read_digits(low) + "到" + read_digits(high)
    return _range(match)


_START = r"(?<![0-9A-Za-z_.,])"
RULES: list[Rule] = [
    (re.compile(r"(?<![\d+])(?:\+86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"), lambda m: _phone(m, False)),
    (re.compile(r"(?<![\d-])(?:0\d{2,3}-\d{7,8}|[48]00-?\d{3}-?\d{4})(?!\d)"), lambda m: _phone(m, False)),
    (re.compile(r"(?<!\d)(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})[日号]?(?![\d.])"), _date),
    (re.compile(r"(?<!\d)(?P<a>\d{4})\s?[-~～–—至到]\s?(?P<b>\d{4})(?=\s?年)"), _years_or_range),
    (re.compile(r"(?<!\d)\d{4}(?=\s?年)"), lambda m: read_digits(m.group(0))),
    (re.compile(r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?(?![\d:])"), _time),
    (re.compile(rf"(?P<neg>-)?(?P<sym>{_CURRENCY})\s?(?P<a>{NUM})(?:\s?[-~～]\s?{_CURRENCY}?(?P<b>{NUM}))?"
                r"(?P<mult>万|亿|千|百万)?"), _money),
    (re.compile(rf"{_START}{NUM}(?=\s?(?:元|块|美元|欧元|英镑|日元))"), lambda m: _amount(m.group(0))),
    (re.compile(rf"{_START}(?P<a>-?{NUM})(?:\s?[-~～]\s?(?P<b>-?{NUM})\s?%?)?\s?%"),
     lambda m: "百分之" + _range(m).replace("到", "到百分之")),
    (re.compile(rf"{_START}(?P<a>-?{NUM})(?:\s?[-~～]\s?(?P<b>-?{NUM}))?\s?°\s?(?P<scale>[CF](?![A-Za-z]))?"),
     _temperature),
    (re.compile(rf"{_START}(?P<a>{NUM})(?:\s?[-~～]\s?(?P<b>{NUM}))?\s?(?P<unit>{UNIT_PATTERN})(?![A-Za-z/])"), _unit),
    (re.compile(r"(?<![\d/.])(?P<n>\d{1,4})/(?P<d>\d{1,4})(?![\d/])"),
     lambda m: read_number(m.group("d")) + "分之" + read_number(m.group("n"))),
    (re.compile(rf"{_START}(?P<a>{NUM})\s?[-~～–—至]\s?(?P<b>{NUM})(?![\d])"), _years_or_range),
    (re.compile(r"(?<![0-9A-Za-z_.])-(?=\.?\d)"), lambda m: "负"),
    (re.compile(rf"(?<![\d.,])2(?=[{_MEASURE_WORDS}])"), lambda m: "两"),
    (re.compile(NUM), lambda m: read_number(m.group(0))),
]
_SYMBOLS: list[Rule] = [
    (re.compile(r"\s*&\s*"), lambda m: "和"),
    (re.compile(r"\s*\+\s*"), lambda m: "加"),
    (re.compile(r"\s*=\s*"), lambda m: "等于"),
    (re.compile(r"%"), lambda m: "百分号"),
    (re.compile(r"°"), lambda m: "度"),
]


def normalize_mandarin(text: str, yao: bool = False) -> str:
    """Mandarin ``text`` (one language span) with numbers and symbols written out in characters."""
    if yao:
        text = RULES[0][0].sub(lambda m: _phone(m, True), text)
        text = RULES[1][0].sub(lambda m: _phone(m, True), text)
    return apply_rules(_SYMBOLS, mark_dashes(apply_rules(RULES, text)))
