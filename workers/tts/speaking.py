"""What the TTS stage says for a written text, piece by piece, and which voice says each piece.

Every backend speaks through here. ``to_spoken`` (``contracts.text``) turns the
written text into what is said, with its pauses; that is cut into what one
backend call speaks:

1. ``phrases``: at every sentence end, with ``tts.sentence_pause_seconds`` of
   silence after it, or the pause the text asks for there when that is longer
   ("Hello. ... How are you?": the ellipsis' 0.4 s);
2. ``phrases``: at every pause inside a sentence ("Wait... what?", "Fine —
   thanks"), with that pause's silence after it;
3. ``say``: into runs of one language (``Spoken.spans``), so that "我喜欢iPhone"
   can go to two voices.

``say`` has each run spoken by the voice that ``voice_for`` picks for its
language; neighbouring runs of one voice in one phrase are one call (a voice
that speaks both languages says the phrase whole). ``TTSBackend.speak`` finishes
each piece (trimmed, resampled, levelled) or serves it from the phrase cache,
keyed by what is said; ``workers.tts.finish.join`` joins them with their
silences. Timings, and so the visemes, follow the spoken form, while the written
text goes on to users untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from contracts.errors import PermanentError
from contracts.text.sentences import split_sentences
from contracts.text.spoken import Spoken
from workers.tts.finish import join
from workers.tts.speech import Speech

if TYPE_CHECKING:
    from workers.tts.base import TTSBackend
    from workers.tts.phrases import PhraseCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    """Who says a piece: a loaded backend and its voice (None: the backend's default)."""

    backend: TTSBackend
    name: str | None


def phrases(spoken: Spoken, sentence_pause: float) -> list[tuple[str, float]]:
    """``spoken.text`` cut at sentence ends and pauses: ``(phrase, seconds of silence after it)``; the last has 0."""
    text = spoken.text
    cuts: dict[int, float] = {}
    position = 0
    for sentence in split_sentences(text, spoken.language):
        position = text.find(sentence, position) + len(sentence)
        cuts[position] = sentence_pause
    for pause in spoken.pauses:
        # A pause in the space after a sentence end is that end's: the longer of the two.
        at = max((end for end in cuts if end <= pause.offset and not text[end:pause.offset].strip()),
                 default=pause.offset)
        cuts[at] = max(cuts.get(at, 0.0), pause.seconds)
    cut: list[tuple[str, float]] = []
    start = 0
    for offset in sorted(cuts):
        phrase = text[start:offset].strip()
        if phrase:
            cut.append((phrase, cuts[offset]))
        start = offset
    tail = text[start:].strip()
    if tail:
        cut.append((tail, 0.0))
    if cut:
        cut[-1] = (cut[-1][0], 0.0)
    return cut


def say(spoken: Spoken, voice_for: Callable[[str], Voice], sentence_pause: float,
        cache: PhraseCache | None = None) -> Speech:
    """Speak ``spoken``: each phrase's runs of one language by the voice of that language, joined with the silences.

    Raises ``PermanentError`` (``empty_text``) when nothing gives any speech.
    """
    parts: list[tuple[str, Speech, float]] = []
    for phrase, silence in phrases(spoken, sentence_pause):
        runs: list[tuple[Voice, str, str]] = []  # (voice, language, text): neighbouring spans of one voice joined
        for span in Spoken(phrase, spoken.language).spans():
            voice = voice_for(span.language)
            if runs and runs[-1][0] == voice:
                runs[-1] = (voice, runs[-1][1], runs[-1][2] + span.text)
            else:
                runs.append((voice, span.language, span.text))
        said = len(parts)
        for voice, language, text in runs:
            if any(c.isalnum() for c in text):  # else punctuation between two languages: nothing to say
                parts.append((text.strip(), _speak(voice, text.strip(), language, cache), 0.0))
        if len(parts) > said:
            parts[-1] = (*parts[-1][:2], silence)
    if not any(len(speech.samples) for _, speech, _ in parts):
        raise PermanentError("there is nothing speakable in the text", code="empty_text")
    return join(parts, parts[0][1].sample_rate)


def _speak(voice: Voice, text: str, language: str, cache: PhraseCache | None) -> Speech:
    """One piece; a piece the voice finds nothing to say in (a rare character it has no sound for) is silence."""
    try:
        return voice.backend.speak(text, voice.name, language, cache)
    except PermanentError as e:
        if e.code != "empty_text":
            raise
        log.warning("TTS backend %s said nothing for a piece of %d characters", voice.backend.name, len(text))
        return Speech(np.zeros(0, dtype=np.float32), voice.backend.settings.tts.sample_rate)
