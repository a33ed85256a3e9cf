"""Reply text helpers: the prompt window going in, speakable sentences coming out.

Small chat models answer in markdown, add emoji, prefix "Assistant:" and stop
mid-sentence when ``max_new_tokens`` runs out. Text-to-speech reads all of that
aloud, so ``clean_reply`` turns raw model output into a few plain sentences.
``build_messages`` keeps the prompt short: the system prompt, a trimmed window
of the session history and the new user message; ``fit_to_budget`` then drops
the oldest exchanges until the prompt fits a token budget.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Sequence

from contracts.payload import Turn
from contracts.text.sentences import split_sentences  # also re-exported: it lives in contracts.text.sentences

# A chat-template token, with the role name that follows "<|im_start|>".
_SPECIAL_TOKEN = re.compile(r"<\|[^|>]{0,40}\|>(?:(?:assistant|user|system)\b)?")
_CODE_FENCE = re.compile(r"```.*?(```|$)", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]{0,200}>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+\u2022\u00b7\u25aa\u25ba\u2023\u25e6]|\(?\d{1,3}[.)]|[a-zA-Z][.)](?=\s))\s+")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_ROLE_PREFIX = re.compile(r"^\s*(?:assistant|ai|bot|a|response|answer|reply)\s*:\s*", re.I)
_JUNK = re.compile(r"[*_#`~|<>\[\]{}\\^]+")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\"\s*\"")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:%)\u2026])")
_TERMINAL = re.compile(r"(?:[.!?\u2026]|[\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*$")

# Emoji pieces that are not in a symbol category: variation selectors, keycap, tags.
_EMOJI_MARKS = frozenset({0x200D, 0x20E3, *range(0xFE00, 0xFE10), *range(0xE0020, 0xE0080)})
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Co", "Cn", "Cs", "Cf", "Me"})


def _speakable_char(char: str) -> bool:
    if char in "\n\t ":
        return True
    if ord(char) in _EMOJI_MARKS:
        return False
    category = unicodedata.category(char)
    return category not in _DROPPED_CATEGORIES and category != "Cc"


def _strip_inline_markdown(line: str) -> str:
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _URL.sub("", line)
    line = _INLINE_CODE.sub(r"\1", line)
    line = _BOLD.sub(r"\2", line)
    line = _ITALIC_STAR.sub(r"\1", line)
    return _ITALIC_UNDERSCORE.sub(r"\1", line)


def _plain_lines(text: str) -> list[tuple[str, bool]]:
    """Markdown lines as plain text, each with whether it was a list item or heading."""
    lines: list[tuple[str, bool]] = []
    for raw in text.splitlines():
        if _RULE.match(raw):
            lines.append(("", False))
            continue
        line = _QUOTE.sub("", raw)
        structural = bool(_HEADING.match(line) or _LIST_MARKER.match(line))
        line = _LIST_MARKER.sub("", _HEADING.sub("", line))
        line = "".join(c for c in _strip_inline_markdown(line) if _speakable_char(c))
        line = _JUNK.sub(" ", line)
        lines.append((" ".join(line.split()), structural))
    return lines


def _join_lines(lines: list[tuple[str, bool]]) -> str:
    """Join lines into one paragraph, ending list items, headings and paragraphs with a period."""
    parts: list[str] = []
    for index, (line, structural) in enumerate(lines):
        if not line:
            continue
        following = next((item for item in lines[index + 1:] if item[0]), None)
        ends_block = structural or (following is not None and following[1])
        ends_paragraph = index + 1 < len(lines) and not lines[index + 1][0]
        if following is not None and (ends_block or ends_paragraph) and not _TERMINAL.search(line):
            line = line.rstrip(",;:-") + "."
        parts.append(line)
    return " ".join(parts)


def is_complete(sentence: str) -> bool:
    """Whether a sentence ends with terminal punctuation."""
    return bool(_TERMINAL.search(sentence.rstrip()))


def clean_reply(text: str, max_sentences: int = 3) -> str:
    """Make raw model output speakable: plain text, whole sentences, at most ``max_sentences``.

    Strips markdown, emoji and other symbols, special tokens and a leading role
    prefix such as "Assistant:"; drops an unfinished last sentence when a finished
    one comes before it. Returns "" when nothing speakable is left.
    """
    if max_sentences < 1:
        raise ValueError("max_sentences must be at least 1")
    text = _SPECIAL_TOKEN.sub(" ", text)
    text = _CODE_FENCE.sub("\n", text)
    text = _HTML_TAG.sub(" ", text)
    text = _join_lines(_plain_lines(text))
    while _ROLE_PREFIX.match(text):
        text = _ROLE_PREFIX.sub("", text, count=1)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))
    sentences = split_sentences(text)
    if len(sentences) > 1 and not is_complete(sentences[-1]):
        sentences.pop()
    sentences = [s for s in sentences[:max_sentences] if any(c.isalnum() for c in s)]
    reply = " ".join(sentences)
    return reply.lstrip(".,;:!?-\u2026 ").strip()


def build_messages(
    system_prompt: str, history: Sequence[Turn], user_text: str, max_turns: int
) -> list[Turn]:
    """The prompt for one reply: system prompt, the last ``max_turns`` history turns, the user message.

    System turns in ``history`` are dropped (the system prompt given here rules),
    as are empty turns; consecutive turns of one role are merged, since many chat
    templates require user and assistant to alternate. The window drops the
    oldest turns first and never starts with an assistant turn whose user turn
    was cut off.
    """
    if max_turns < 0:
        raise ValueError("max_turns must not be negative")
    if not user_text.strip():
        raise ValueError("the user message is empty")
    merged: list[Turn] = []
    for turn in history:
        content = turn.content.strip()
        if turn.role == "system" or not content:
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(role=turn.role, content=f"{merged[-1].content}\n{content}")
        else:
            merged.append(Turn(role=turn.role, content=content))
    # A trailing unanswered user turn (its job failed) is kept, merged with the new message.
    pending = merged.pop().content + "\n" if merged and merged[-1].role == "user" else ""
    if not max_turns:
        pending = ""
    window = merged[-max_turns:] if max_turns else []
    while window and window[0].role != "user":
        window.pop(0)
    system = [Turn(role="system", content=system_prompt.strip())] if system_prompt.strip() else []
    return [*system, *window, Turn(role="user", content=pending + user_text.strip())]


def fit_to_budget(messages: Sequence[Turn], budget: int, count_tokens: Callable[[Sequence[Turn]], int]) -> list[Turn]:
    """``messages`` (from ``build_messages``) with the oldest history exchanges dropped until they fit.

    ``count_tokens`` measures a prompt; the system prompt and the last (new) user
    message are always kept, even when they alone exceed ``budget``. History goes
    one exchange at a time, a user turn with the assistant turn that answered it,
    so the window never starts with an answer to a question it no longer holds.
    """
    kept = list(messages)
    head = 1 if kept and kept[0].role == "system" else 0
    while len(kept) - head > 1 and count_tokens(kept) > budget:
        del kept[head]
        while len(kept) - head > 1 and kept[head].role != "user":
            del kept[head]
    return kept
