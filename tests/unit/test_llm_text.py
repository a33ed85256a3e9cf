"""Reply text helpers: the reply as written, cut into the sentences that are spoken; the prompt window."""

from __future__ import annotations

import pytest

from contracts.payload import Turn
from contracts.text.sentences import split_sentences
from contracts.text.spoken import to_spoken
from workers.llm.text import ReplySentences, build_messages, is_complete

pytestmark = pytest.mark.unit


def turns(*pairs: tuple[str, str]) -> list[Turn]:
    return [Turn(role=role, content=content) for role, content in pairs]  # type: ignore[arg-type]


def cut(raw: str, max_sentences: int = 3, language: str | None = "en") -> ReplySentences:
    """``raw`` as a whole reply, fed in pieces of five characters as a stream would bring it."""
    reply = ReplySentences(language, max_sentences)
    for i in range(0, len(raw), 5):
        reply.feed(raw[i:i + 5])
    reply.finish()
    return reply


def said(reply: ReplySentences) -> str:
    return to_spoken(reply.text, reply.language).text


class TestWrittenStaysWritten:
    def test_markdown_and_emoji_stay_in_the_reply_and_are_not_said(self) -> None:
        reply = cut("**Hello!** I am *really* glad 😀, `truly` __glad__.")
        assert reply.sentences == ["**Hello!**", "I am *really* glad 😀, `truly` __glad__."]
        assert reply.text == "**Hello!** I am *really* glad 😀, `truly` __glad__."
        assert said(reply) == "Hello! I am really glad, truly glad."

    def test_the_reply_keeps_its_lines(self) -> None:
        raw = "Here are two ideas:\n\n1. Walk every day.\n2. Read a book."
        reply = cut(raw)
        assert reply.text == raw and len(reply.sentences) == 3
        assert "Walk every day" in said(reply) and "*" not in said(reply)

    def test_links_are_said_by_their_text(self) -> None:
        reply = cut("See [the docs](https://example.com/docs) for more.")
        assert reply.text == "See [the docs](https://example.com/docs) for more."
        assert said(reply) == "See the docs for more."

    def test_a_code_block_is_not_said(self) -> None:
        assert said(cut("```python\nprint(1)\n```\nThat prints one.")) == "That prints one."

    @pytest.mark.parametrize("raw", ["", "   ", "... !!! ???", "**__**", "\U0001F44D\U0001F3FD \U0001F389 \u2728"])
    def test_nothing_to_say_gives_no_sentence(self, raw: str) -> None:
        assert cut(raw).sentences == []


class TestPausesAreNeverSentences:
    def test_an_ellipsis_between_sentences_goes_with_the_next(self) -> None:
        reply = cut("Hello. ... How are you? \u2014 Fine!")
        assert reply.sentences == ["Hello.", "... How are you?", "\u2014 Fine!"]
        assert reply.text == "Hello. ... How are you? \u2014 Fine!"

    def test_a_trailing_emoji_stays_written_and_is_no_sentence(self) -> None:
        reply = cut("See you soon! \U0001F600\U0001F389", max_sentences=5)
        assert reply.sentences == ["See you soon!"]
        assert reply.text == "See you soon! \U0001F600\U0001F389"

    def test_punctuation_alone_is_no_sentence(self) -> None:
        assert cut("Really?! ?! Yes.").sentences == ["Really?!", "?! Yes."]


class TestModelLeftovers:
    def test_template_tokens_go(self) -> None:
        reply = cut("<|im_start|>assistant\nHello there.<|im_end|>")
        assert reply.sentences == ["Hello there."] and reply.text == "Hello there."

    @pytest.mark.parametrize("prefix", ["Assistant:", "assistant :", "AI:", "**Assistant:**", "A:"])
    def test_role_prefix_goes(self, prefix: str) -> None:
        reply = cut(f"{prefix} Sure, here it is.")
        assert reply.sentences == ["Sure, here it is."] and reply.text == "Sure, here it is."

    def test_accents_and_dashes_are_kept(self) -> None:
        assert cut("Café au lait — très bien. Voilà!").text == "Café au lait — très bien. Voilà!"


class TestSentences:
    def test_truncated_last_sentence_cut(self) -> None:
        reply = cut("Sleep matters. Go to bed early. Lack of sleep can affect your")
        assert reply.sentences == ["Sleep matters.", "Go to bed early."]
        assert reply.text == "Sleep matters. Go to bed early."

    def test_single_unfinished_sentence_kept(self) -> None:
        assert cut("I think the answer is").text == "I think the answer is"

    def test_unfinished_after_colon_cut(self) -> None:
        assert cut("Sure thing. Here is a tip:").text == "Sure thing."

    def test_finished_by_what_is_said(self) -> None:
        assert cut("Sure thing. **Done!**").sentences == ["Sure thing.", "**Done!**"]

    def test_max_sentences(self) -> None:
        text = "One. Two! Three? Four. Five."
        assert cut(text).text == "One. Two! Three?"
        assert cut(text, max_sentences=1).text == "One."
        assert cut(text, max_sentences=1).full

    def test_decimals_are_not_sentence_ends(self) -> None:
        text = "It weighs 3.5 kg. It costs $4.99 today. Pi is about 3.14159."
        assert cut(text, max_sentences=2).text == "It weighs 3.5 kg. It costs $4.99 today."

    def test_abbreviations_and_initials(self) -> None:
        text = "Dr. Smith met J. Doe at 5 p.m. today. They talked, e.g. about cats. Fine."
        assert cut(text, max_sentences=2).text == "Dr. Smith met J. Doe at 5 p.m. today. They talked, e.g. about cats."

    def test_sentence_ending_with_i(self) -> None:
        assert split_sentences("So am I. You know it.") == ["So am I.", "You know it."]

    def test_quotes_close_a_sentence(self) -> None:
        assert split_sentences('He said "hi." Then left') == ['He said "hi."', "Then left"]

    def test_max_sentences_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            ReplySentences("en", max_sentences=0)

    def test_is_complete(self) -> None:
        assert is_complete("Done.")
        assert is_complete('He said "yes!"')
        assert is_complete("**Done!**")
        assert is_complete("I wonder\u2026")
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
