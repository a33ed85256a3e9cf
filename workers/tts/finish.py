"""From one backend output per piece of spoken text to the speech the farm hands on.

A piece is a sentence, or the part of one between two pauses or in one language
(``workers.tts.speaking``). Each is trimmed to its speech (so every backend's
pauses are the same), resampled to ``tts.sample_rate``, brought to
``tts.loudness_dbfs`` with peaks limited to ``tts.peak_dbfs``, and given
timings: the backend's phoneme alignments where it has them, otherwise word
timings estimated by spreading the piece's words over its speech in proportion
to their length. ``join`` puts the pieces one after another, each followed by
its silence (``workers.tts.speaking`` says how long: the sentence pause, or the
pause the text asks for).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

from contracts.audio import resample
from contracts.settings import TTSSettings
from contracts.text.sentences import is_cjk
from workers.tts.loudness import normalise, speech_bounds
from workers.tts.speech import Speech, Timing

# Silence kept before the first and after the last sentence.
EDGE_SECONDS = 0.05
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019.,-][^\W_]+)*|[,;:\u3001\uff0c\uff1b\uff1a\u2014]")
_PAUSE_MARKS = frozenset(",;:\u3001\uff0c\uff1b\uff1a\u2014")
# Relative spoken length: a pause at a comma, a CJK syllable, a digit read as a number word.
_PAUSE_WEIGHT = 3.0
_CJK_WEIGHT = 3.0
_DIGIT_WEIGHT = 3.0


def normalise_text(text: str) -> str:
    """The text as the phrase cache sees it: NFC, whitespace runs collapsed, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _words(sentence: str) -> list[tuple[str, float]]:
    """Words (CJK characters one by one) and pause marks, each with its relative spoken length."""
    items: list[tuple[str, float]] = []
    for token in _TOKEN.findall(sentence):
        if token in _PAUSE_MARKS:
            items.append((token, _PAUSE_WEIGHT))
            continue
        run = ""
        for char in token:
            if is_cjk(char):
                if run:
                    items.append((run, _latin_weight(run)))
                    run = ""
                items.append((char, _CJK_WEIGHT))
            else:
                run += char
        if run:
            items.append((run, _latin_weight(run)))
    return items


def _latin_weight(word: str) -> float:
    letters = sum(c.isalpha() for c in word)
    digits = sum(c.isdigit() for c in word)
    return max(2.0, letters + _DIGIT_WEIGHT * digits)


def estimate_word_timings(sentence: str, start: float, end: float) -> tuple[Timing, ...]:
    """Words of ``sentence`` spread over ``[start, end]`` seconds by their relative spoken length."""
    items = _words(sentence)
    total = sum(weight for _, weight in items)
    if not items or total <= 0 or end <= start:
        return ()
    scale = (end - start) / total
    timings = []
    cursor = start
    for label, weight in items:
        following = cursor + weight * scale
        if label not in _PAUSE_MARKS:
            timings.append(Timing(cursor, following, label, "word"))
        cursor = following
    return tuple(timings)


def _clip(timings: Sequence[Timing], offset: float, length: float) -> tuple[Timing, ...]:
    """Timings moved by ``offset`` and cut to ``[0, length]``; items left empty are dropped."""
    clipped = []
    for timing in timings:
        start, end = max(0.0, timing.start + offset), min(length, timing.end + offset)
        if end > start:
            clipped.append(Timing(start, end, timing.label, timing.kind))
    return tuple(clipped)


def finish_sentence(raw: Speech, sentence: str, tts: TTSSettings) -> Speech:
    """One sentence of backend output → trimmed, resampled, normalised, with timings."""
    samples = np.asarray(raw.samples, dtype=np.float32).reshape(-1)
    first, last = speech_bounds(samples, raw.sample_rate)
    if last <= first:
        return Speech(np.zeros(0, dtype=np.float32), tts.sample_rate)
    samples = samples[first:last]
    if raw.sample_rate != tts.sample_rate:
        samples = resample(samples, raw.sample_rate, tts.sample_rate)
    samples = normalise(samples, tts.sample_rate, tts.loudness_dbfs, tts.peak_dbfs)
    seconds = len(samples) / tts.sample_rate
    timings = _clip(raw.timings, -first / raw.sample_rate, seconds)
    from_model = bool(timings) and raw.timings_from_model
    if not timings:
        timings = estimate_word_timings(sentence, 0.0, seconds)
    return Speech(samples, tts.sample_rate, timings, from_model)


def join(parts: Sequence[tuple[str, Speech, float]], sample_rate: int) -> Speech:
    """Pieces of speech (text, finished speech, seconds of silence after it) one after another, with a
    little silence at both ends; the silence after the last piece is left out.

    Timings stay the backend's phoneme timings only when every piece has them;
    otherwise every piece gets estimated word timings, so that one kind is returned.
    """
    spoken = [(text, speech, silence) for text, speech, silence in parts if len(speech.samples)]
    edge = np.zeros(int(EDGE_SECONDS * sample_rate), dtype=np.float32)
    from_model = bool(spoken) and all(speech.timings_from_model for _, speech, _ in spoken)
    pieces: list[np.ndarray] = [edge]
    timings: list[Timing] = []
    offset = len(edge)
    for index, (text, speech, _) in enumerate(spoken):
        if index:
            pause = np.zeros(int(spoken[index - 1][2] * sample_rate), dtype=np.float32)
            pieces.append(pause)
            offset += len(pause)
        own = speech.timings if from_model or not speech.timings_from_model else ()
        piece_timings = own or estimate_word_timings(text, 0.0, speech.seconds)
        timings.extend(t.shifted(offset / sample_rate) for t in piece_timings)
        pieces.append(speech.samples)
        offset += len(speech.samples)
    pieces.append(edge)
    return Speech(np.concatenate(pieces).astype(np.float32, copy=False), sample_rate, tuple(timings), from_model)
