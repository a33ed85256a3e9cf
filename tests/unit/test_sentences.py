"""Sentence splitting for English and Chinese (contracts.text.sentences)."""

from __future__ import annotations

import pytest

from contracts.text.sentences import primary_language, split_sentences

pytestmark = pytest.mark.unit


class TestEnglish:
    @pytest.mark.parametrize("text, expected", [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("No ending here", ["No ending here"]),
        ("  Spaces  around.   Here.  ", ["Spaces  around.", "Here."]),
    ])
    def test_basic_stops(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text) == expected

    @pytest.mark.parametrize("text, expected", [
        ("Dr. Smith is here. Mrs. Jones too.", ["Dr. Smith is here.", "Mrs. Jones too."]),
        ("Bring fruit, e.g. apples. Or i.e. pears.", ["Bring fruit, e.g. apples.", "Or i.e. pears."]),
        ("We met Prof. Brown vs. Mr. Green. Done.", ["We met Prof. Brown vs. Mr. Green.", "Done."]),
        ("Room No. 5 is free. Good.", ["Room No. 5 is free.", "Good."]),
        ("I met J. R. Smith. He waved.", ["I met J. R. Smith.", "He waved."]),
        ("So am I. You know it.", ["So am I.", "You know it."]),
        ("See you at 5 p.m. today. Bye.", ["See you at 5 p.m. today.", "Bye."]),
        ("I live in the U.S.A. now.", ["I live in the U.S.A. now."]),
    ])
    def test_abbreviations_and_initials(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text) == expected

    @pytest.mark.parametrize("text, expected", [
        ("Pi is 3.14 or so. Nice.", ["Pi is 3.14 or so.", "Nice."]),
        ("It costs $1,000.50 today. Cheap.", ["It costs $1,000.50 today.", "Cheap."]),
        ("Version 2.0.1 is out. Update.", ["Version 2.0.1 is out.", "Update."]),
        ("I counted 42. Then I stopped.", ["I counted 42.", "Then I stopped."]),
        ("1. Buy milk. 2. Walk the dog.", ["1. Buy milk.", "2. Walk the dog."]),
    ])
    def test_numbers(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text) == expected

    @pytest.mark.parametrize("text, expected", [
        ("Wait... what happened? Nothing.", ["Wait... what happened?", "Nothing."]),
        ("I wonder\u2026 Maybe later.", ["I wonder\u2026", "Maybe later."]),
        ("Well... I think so.", ["Well...", "I think so."]),
    ])
    def test_ellipses(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text) == expected

    @pytest.mark.parametrize("text, expected", [
        ('He said "hi." Then left', ['He said "hi."', "Then left"]),
        ('"Stop!" she shouted.', ['"Stop!" she shouted.']),
        ("She said \u201cyes.\u201d He nodded.", ["She said \u201cyes.\u201d", "He nodded."]),
        ("(This is an aside.) Next one.", ["(This is an aside.)", "Next one."]),
        ("**Sure!** Here it is. ~~Old.~~ New.", ["**Sure!**", "Here it is.", "~~Old.~~", "New."]),
    ])
    def test_quotes_and_brackets_after_the_stop(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text) == expected

    def test_blank_line_ends_a_sentence(self) -> None:
        assert split_sentences("A heading\n\nThe body. More.") == ["A heading", "The body.", "More."]
        assert split_sentences("one line\nwraps here.") == ["one line\nwraps here."]

    @pytest.mark.parametrize("text", ["", "   ", "\n\n"])
    def test_empty(self, text: str) -> None:
        assert split_sentences(text) == []


class TestChinese:
    @pytest.mark.parametrize("text, expected", [
        ("你好！我是小明。今天天气好吗？", ["你好！", "我是小明。", "今天天气好吗？"]),
        ("真的吗？！当然。", ["真的吗？！", "当然。"]),
        ("他说：“我明天来。”然后走了。", ["他说：“我明天来。”", "然后走了。"]),
        ("书名是《三体》。很好看！", ["书名是《三体》。", "很好看！"]),
        ("我们吃饭，然后散步；好吗", ["我们吃饭，然后散步；好吗"]),
    ])
    def test_full_width_stops(self, text: str, expected: list[str]) -> None:
        assert split_sentences(text, "zh") == expected
        assert split_sentences(text) == expected  # the full-width stops need no hint

    def test_numbers_do_not_split(self) -> None:
        assert split_sentences("圆周率是3.14。价格是1,000元。") == ["圆周率是3.14。", "价格是1,000元。"]

    def test_half_width_stops_in_chinese_text(self) -> None:
        assert split_sentences("你好!我是小明?是的", "zh-CN") == ["你好!", "我是小明?", "是的"]
        assert split_sentences("你好.我是小明.", "zh") == ["你好.", "我是小明."]
        # Without the hint a half-width period before CJK stays (it could be inside a token).
        assert split_sentences("你好.我是小明.") == ["你好.我是小明."]

    def test_ellipsis_inside_a_chinese_sentence(self) -> None:
        assert split_sentences("我想……还是算了。好的。", "zh") == ["我想……还是算了。", "好的。"]

    def test_mixed_scripts(self) -> None:
        assert split_sentences("Hello! 你好。How are you? 我很好。") == ["Hello!", "你好。", "How are you?", "我很好。"]
        assert split_sentences("Hello!你好。") == ["Hello!", "你好。"]


@pytest.mark.parametrize("tag, primary", [
    ("zh-CN", "zh"), ("en_US", "en"), ("ZH", "zh"), ("", None), (None, None), ("yue-Hant-HK", "yue"),
])
def test_primary_language(tag: str | None, primary: str | None) -> None:
    assert primary_language(tag) == primary
