"""Reply text helpers: speakable replies out of raw model text, and the prompt window."""

from __future__ import annotations

import pytest

from contracts.payload import Turn
from workers.llm.text import build_messages, clean_reply, is_complete, split_sentences

pytestmark = pytest.mark.unit


def turns(*pairs: tuple[str, str]) -> list[Turn]:
    return [Turn(role=role, content=content) for role, content in pairs]  # type: ignore[arg-type]


class TestCleanReplyMarkdown:
    def test_bold_italic_and_code(self) -> None:
        assert clean_reply("**Hello!** I am *really* glad, `truly` __glad__.") == (
            "Hello! I am really glad, truly glad."
        )

    def test_links_keep_their_text_and_urls_go(self) -> None:
        text = "See [the docs](https://example.com/docs) or https://example.com for more."
        assert clean_reply(text) == "See the docs or for more."

    def test_headings_and_bullets_become_sentences(self) -> None:
        text = "# Tips\n\n- Drink water\n- Sleep well\n\nHope this helps!"
        assert clean_reply(text, max_sentences=4) == "Tips. Drink water. Sleep well. Hope this helps!"

    def test_numbered_list_markers(self) -> None:
        text = "Here are two ideas:\n1. Walk every day.\n2) Read a book.\n"
        assert clean_reply(text) == "Here are two ideas. Walk every day. Read a book."

    def test_code_block_dropped(self) -> None:
        assert clean_reply("```python\nprint(1)\n```\nThat prints one.") == "That prints one."

    def test_blockquote_and_rule(self) -> None:
        assert clean_reply("> Quoted line.\n\n---\n\nDone.") == "Quoted line. Done."

    def test_snake_case_is_read_as_words(self) -> None:
        assert clean_reply("Set the max_size value.") == "Set the max size value."


class TestCleanReplySymbols:
    def test_emoji_removed(self) -> None:
        assert clean_reply("I love it ❤️! Great day 😀🎉. Thumbs up 👍🏽.") == (
            "I love it! Great day. Thumbs up."
        )

    def test_emoji_sequences_removed(self) -> None:
        assert clean_reply("Family: 👨‍👩‍👧 and keycap 1️⃣ done.") == "Family: and keycap 1 done."

    def test_only_emoji_is_empty(self) -> None:
        assert clean_reply("👍🏽 🎉 ✨") == ""

    def test_special_tokens_removed(self) -> None:
        assert clean_reply("<|im_start|>assistant\nHello there.<|im_end|>") == "Hello there."

    def test_accents_and_dashes_kept(self) -> None:
        assert clean_reply("Café au lait — très bien. Voilà!") == "Café au lait — très bien. Voilà!"

    def test_whitespace_collapsed(self) -> None:
        assert clean_reply("  Hello \n\t  world .  ") == "Hello world."


class TestCleanReplySentences:
    @pytest.mark.parametrize("prefix", ["Assistant:", "assistant :", "AI:", "**Assistant:**", "A:"])
    def test_role_prefix_removed(self, prefix: str) -> None:
        assert clean_reply(f"{prefix} Sure, here it is.") == "Sure, here it is."

    def test_truncated_last_sentence_cut(self) -> None:
        text = "Sleep matters. Go to bed early. Lack of sleep can affect your"
        assert clean_reply(text) == "Sleep matters. Go to bed early."

    def test_single_unfinished_sentence_kept(self) -> None:
        assert clean_reply("I think the answer is") == "I think the answer is"

    def test_unfinished_after_colon_cut(self) -> None:
        assert clean_reply("Sure thing. Here is a tip:") == "Sure thing."

    def test_max_sentences(self) -> None:
        text = "One. Two! Three? Four. Five."
        assert clean_reply(text) == "One. Two! Three?"
        assert clean_reply(text, max_sentences=1) == "One."

    def test_decimals_are_not_sentence_ends(self) -> None:
        text = "It weighs 3.5 kg. It costs $4.99 today. Pi is about 3.14159."
        assert clean_reply(text, max_sentences=2) == "It weighs 3.5 kg. It costs $4.99 today."

    def test_abbreviations_and_initials(self) -> None:
        text = "Dr. Smith met J. Doe at 5 p.m. today. They talked, e.g. about cats. Fine."
        assert clean_reply(text, max_sentences=2) == (
            "Dr. Smith met J. Doe at 5 p.m. today. They talked, e.g. about cats."
        )

    def test_sentence_ending_with_i(self) -> None:
        assert split_sentences("So am I. You know it.") == ["So am I.", "You know it."]

    def test_quotes_close_a_sentence(self) -> None:
        assert split_sentences('He said "hi." Then left') == ['He said "hi."', "Then left"]

    def test_empty_and_punctuation_only(self) -> None:
        assert clean_reply("") == ""
        assert clean_reply("   ") == ""
        assert clean_reply("... !!! ???") == ""
        assert clean_reply("**__**") == ""

    def test_leading_punctuation_left_by_symbols(self) -> None:
        assert clean_reply("🎉! Welcome back.") == "Welcome back."

    def test_max_sentences_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            clean_reply("Hi.", max_sentences=0)

    def test_is_complete(self) -> None:
        assert is_complete("Done.")
        assert is_complete('He said "yes!"')
        assert not is_complete("and then")
        assert not is_complete("Here:")


class TestBuildMessages:
    history = turns(
        ("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "a2"),
        ("user", "u3"), ("assistant", "a3"),
    )

    def test_system_first_then_history_then_user(self) -> None:
        messages = build_messages("Be brief.", self.history, "u4", max_turns=10)
        assert messages[0] == Turn(role="system", content="Be brief.")
        assert [m.content for m in messages[1:]] == ["u1", "a1", "u2", "a2", "u3", "a3", "u4"]
        assert messages[-1].role == "user"

    def test_trimming_drops_oldest_and_keeps_system_prompt(self) -> None:
        messages = build_messages("Be brief.", self.history, "u4", max_turns=4)
        assert [m.content for m in messages] == ["Be brief.", "u2", "a2", "u3", "a3", "u4"]

    def test_odd_window_never_starts_with_assistant(self) -> None:
        messages = build_messages("Be brief.", self.history, "u4", max_turns=3)
        assert [m.content for m in messages] == ["Be brief.", "u3", "a3", "u4"]

    def test_zero_turns(self) -> None:
        messages = build_messages("Be brief.", self.history, "u4", max_turns=0)
        assert [m.content for m in messages] == ["Be brief.", "u4"]

    def test_empty_history_and_empty_system_prompt(self) -> None:
        assert build_messages("", [], " hi ", max_turns=6) == [Turn(role="user", content="hi")]

    def test_system_and_empty_turns_in_history_dropped(self) -> None:
        history = turns(("system", "old rules"), ("user", "u1"), ("assistant", " "), ("assistant", "a1"))
        messages = build_messages("New rules.", history, "u2", max_turns=6)
        assert [(m.role, m.content) for m in messages] == [
            ("system", "New rules."), ("user", "u1"), ("assistant", "a1"), ("user", "u2"),
        ]

    def test_roles_alternate(self) -> None:
        history = turns(("user", "u1"), ("user", "u1b"), ("assistant", "a1"), ("user", "lost"))
        messages = build_messages("S.", history, "u2", max_turns=6)
        assert [(m.role, m.content) for m in messages] == [
            ("system", "S."), ("user", "u1\nu1b"), ("assistant", "a1"), ("user", "lost\nu2"),
        ]

    def test_invalid_arguments(self) -> None:
        with pytest.raises(ValueError):
            build_messages("S.", [], "   ", max_turns=2)
        with pytest.raises(ValueError):
            build_messages("S.", [], "hi", max_turns=-1)
