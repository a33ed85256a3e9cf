"""Reply text helpers: the prompt window going in, the model's leftovers coming out.

``build_messages`` keeps the prompt short: the system prompt, a trimmed window
of the session history and the new user message; ``fit_to_budget`` then drops
the oldest exchanges until the prompt fits a token budget. On the way out,
``strip_template_tokens`` and ``strip_role_prefix`` take away what a small chat
model writes that is not part of its answer (``<|im_end|>``, "Assistant:").
Everything else of the reply stays as written (Markdown, emoji): users read it
as the model wrote it, and the spoken-text front end (``contracts.text``)
decides what of it is said.

``ReplySentences`` cuts the reply, streamed or not, into the sentences that are
spoken (``contracts.text.spoken.SentenceStream``: each says something, so an
ellipsis, a "?!" or an emoji is never a segment of its own); at most
``max_sentences`` are kept, and an unfinished last sentence (the token budget ran
out) is dropped when a finished one came before it (``is_complete`` judges a
sentence by what is said of it).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from contracts.payload import Turn
from contracts.text.spoken import SentenceStream, to_spoken

# A chat-template token, with the role name that follows "<|im_start|>".
_TEMPLATE_TOKEN = re.compile(r"<\|[^|>]{0,40}\|>(?:(?:assistant|user|system)\b)?")
_TOKEN_CHARS = 53  # the longest token the pattern takes, with its role name
_ROLES = ("assistant", "user", "system")
_MAY_BE_ROLE = re.compile(r"\s*[*_]*\s*[A-Za-z]{0,12}\s*(?::\s*[*_]*\s*)?")
_ROLE_PREFIX = re.compile(r"^\s*([*_]*)\s*(?:assistant|ai|bot|a|response|answer|reply)\s*(?:\1\s*:|:\s*\1)\s*", re.I)
_TERMINAL = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*$")


def strip_template_tokens(text: str) -> str:
    """``text`` without chat-template tokens (``<|im_end|>``, ``<|im_start|>assistant``)."""
    return _TEMPLATE_TOKEN.sub(" ", text)


def _unfinished_token(text: str) -> int:
    """Where a template token that may not be complete yet starts at the end of ``text`` (else its length)."""
    if text.endswith("<"):
        return len(text) - 1
    start = text.rfind("<|")
    if start < 0 or len(text) - start > _TOKEN_CHARS:
        return len(text)
    end = text.find("|>", start)
    if end < 0:
        return start
    after = text[end + 2:]
    return start if any(role.startswith(after) for role in _ROLES) else len(text)


def strip_role_prefix(text: str) -> str:
    """``text`` without the role names a model may start its reply with ("Assistant: Sure.")."""
    while _ROLE_PREFIX.match(text):
        text = _ROLE_PREFIX.sub("", text, count=1)
    return text


def is_complete(sentence: str, language: str | None = None) -> bool:
    """Whether what is said of ``sentence`` ends a sentence ("**Done!**" does, "Here is how:" does not)."""
    return bool(_TERMINAL.search(to_spoken(sentence, language).text))


class ReplySentences:
    """Cut a reply that arrives in pieces into its spoken sentences, each as soon as it is complete."""

    def __init__(self, language: str | None = None, max_sentences: int = 3) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.language = language
        self.max_sentences = max_sentences
        self.sentences: list[str] = []  # handed out, as written
        self._stream = SentenceStream(language)
        self._pending = ""  # what may be the start of a template token or a role name, until the rest comes
        self._started = False  # whether the reply's start is past (a role name there is taken out)
        self._tail = ""  # what says nothing after the last sentence, as written

    @property
    def full(self) -> bool:
        return len(self.sentences) >= self.max_sentences

    def feed(self, piece: str) -> list[str]:
        """The sentences that ``piece`` completes, up to the cap."""
        text = self._pending + piece
        cut = _unfinished_token(text)  # hold back what may be the start of a template token
        ready, self._pending = strip_template_tokens(text[:cut]), text[cut:]
        if not self._started:
            if _MAY_BE_ROLE.fullmatch(ready):  # the first word may still turn out to be "Assistant:"
                self._pending = text
                return []
            ready, self._started = strip_role_prefix(ready), True
        return self._hand_out(self._stream.feed(ready))

    def finish(self) -> list[str]:
        """The sentences left once the model has stopped, without an unfinished last one."""
        ready, self._pending = strip_template_tokens(self._pending), ""
        if not self._started:
            ready, self._started = strip_role_prefix(ready), True
        rest = self._stream.feed(ready) + self._stream.finish()
        if rest and (self.sentences or len(rest) > 1) and not is_complete(rest[-1], self.language):
            rest.pop()
        else:
            self._tail = self._stream.tail
        return self._hand_out(rest)

    def _hand_out(self, sentences: list[str]) -> list[str]:
        sentences = sentences[:max(0, self.max_sentences - len(self.sentences))]
        self.sentences += sentences
        return sentences

    @property
    def text(self) -> str:
        """The reply as written: its sentences handed out, with the text between them as the model wrote it."""
        written = "".join(self._stream.written[:len(self.sentences)])
        if len(self.sentences) == len(self._stream.written):
            written += self._tail
        return written.strip()


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
