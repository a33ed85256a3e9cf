"""Time-stamped phonemes for the mouth: from the TTS stage's timings, or from the text aligned to the audio.

Both return openfacefx ``PhonemeSegment`` lists that cover the audio from 0 with
``sil`` wherever nothing is spoken, plus the alphabet of their labels (``ipa`` or
``arpabet``), which picks the phoneme → viseme table.

* Phoneme timings (Piper: IPA, from its alignments) are used as they are.
* Word timings get their phonemes from openfacefx's G2P, spread over each word
  by duration priors.
* Text without timings is aligned to the audio here (no acoustic model ships):
  the speech is cut into voiced runs by its loudness; the text is cut into
  phrases at punctuation; the longest pauses are matched to phrase boundaries in
  order (a small dynamic programme that pairs each pause with the boundary
  whose share of the text is closest to its share of the speech); within a
  phrase the words, then their phonemes, share the voiced time by their
  duration priors. Pauses between the runs are silence.

openfacefx is imported by the callers' lazy import of this module (the backend's
render), so the registry can be listed without the ``animation`` extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from openfacefx.alignment import NaiveAligner, PhonemeSegment
from openfacefx.g2p import G2P
from openfacefx.phonemes import SILENCE

from contracts.timings import Timing

# Voiced runs closer than this are one run (stop closures, short word gaps).
MIN_PAUSE_S = 0.15
# Text words: letters and apostrophes (numbers and other scripts fall back to one vowel a character).
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+|[.,;:!?\u2026\u2014\u3002\uff0c\uff01\uff1f]", re.UNICODE)
_BREAK = set(".,;:!?\u2026\u2014\u3002\uff0c\uff01\uff1f")
_ARPABET = re.compile(r"^[A-Z]{1,2}[012]?$")
# Relative duration priors (as openfacefx's aligner uses): vowels last longer than stops.
_VOWEL_PRIOR, _CONSONANT_PRIOR, _FALLBACK_PHONE = 1.4, 0.8, "AH0"


# Frequent words that openfacefx's small dictionary lacks and its letter rules get wrong (ARPAbet).
_COMMON = {
    "i": "AY1", "my": "M AY1", "by": "B AY1", "why": "W AY1", "you": "Y UW1", "your": "Y AO1 R",
    "we": "W IY1", "me": "M IY1", "he": "HH IY1", "she": "SH IY1", "be": "B IY1", "they": "DH EY1",
    "to": "T UW1", "do": "D UW1", "who": "HH UW1", "two": "T UW1", "too": "T UW1", "for": "F AO1 R",
    "from": "F R AH1 M", "with": "W IH1 DH", "and": "AE1 N D", "are": "AA1 R", "was": "W AA1 Z",
    "were": "W ER1", "have": "HH AE1 V", "what": "W AH1 T", "how": "HH AW1", "where": "W EH1 R",
    "there": "DH EH1 R", "their": "DH EH1 R", "here": "HH IY1 R", "that": "DH AE1 T", "one": "W AH1 N",
    "some": "S AH1 M", "come": "K AH1 M", "would": "W UH1 D", "could": "K UH1 D", "should": "SH UH1 D",
    "about": "AH0 B AW1 T", "know": "N OW1", "no": "N OW1", "so": "S OW1", "go": "G OW1", "our": "AW1 ER0",
    "all": "AO1 L", "said": "S EH1 D", "very": "V EH1 R IY0", "new": "N UW1", "see": "S IY1", "say": "S EY1",
    "today": "T AH0 D EY1", "please": "P L IY1 Z", "thank": "TH AE1 NG K", "thanks": "TH AE1 NG K S",
}


@dataclass(frozen=True)
class Phonemes:
    segments: tuple[PhonemeSegment, ...]
    alphabet: str  # "ipa" or "arpabet"


def from_timings(timings: Sequence[Timing], duration: float, g2p: G2P) -> Phonemes | None:
    """Segments from TTS timings (phoneme or word); None when they hold nothing usable."""
    items = sorted((t for t in timings if t.end > t.start and t.start < duration), key=lambda t: t.start)
    if not items:
        return None
    if all(t.kind == "phoneme" for t in items):
        labels = [t.label.strip() for t in items]
        alphabet = "arpabet" if all(_ARPABET.match(label) for label in labels) else "ipa"
        spans = [(t.start, min(t.end, duration), label) for t, label in zip(items, labels) if label]
        return Phonemes(_with_silence(spans, duration), alphabet)
    aligner = NaiveAligner()
    spans = []
    for t in items:
        if t.kind != "word":
            continue
        phones = _word_phones(t.label, g2p)
        for seg in aligner.align(phones, min(t.end, duration) - t.start, start=t.start):
            spans.append((seg.start, seg.end, seg.phoneme))
    return Phonemes(_with_silence(spans, duration), "arpabet") if spans else None


def from_text(text: str, voiced: np.ndarray, fps: int, duration: float, g2p: G2P) -> Phonemes | None:
    """Segments for ``text`` aligned to the voiced frames (``voiced[i]`` for frame i at ``fps``)."""
    runs = _voiced_runs(voiced, fps)
    words = _words(text, g2p)
    if not runs or not words:
        return None
    phrases = _phrases(words)
    pauses = [(runs[i][1], runs[i + 1][0]) for i in range(len(runs) - 1)]
    chosen = sorted(sorted(range(len(pauses)), key=lambda i: pauses[i][0] - pauses[i][1])[: len(phrases) - 1])
    boundaries = _match_boundaries(phrases, runs, chosen)
    spans: list[tuple[float, float, str]] = []
    aligner = NaiveAligner()
    cuts = [0, *[i + 1 for i in chosen], len(runs)]  # run index ranges, one per phrase group
    starts = [0, *boundaries, len(phrases)]
    for group in range(len(cuts) - 1):
        group_runs = runs[cuts[group]:cuts[group + 1]]
        group_words = [w for phrase in phrases[starts[group]:starts[group + 1]] for w in phrase]
        if not group_words:
            continue
        clock = _SpeechClock(group_runs)
        total = sum(weight for _, weight in group_words)
        position = 0.0
        for phones, weight in group_words:
            begin = clock.time(position / total)
            position += weight
            end = clock.time(position / total)
            for seg in aligner.align(phones, end - begin, start=begin):
                spans.append((seg.start, seg.end, seg.phoneme))
    return Phonemes(_with_silence(spans, duration), "arpabet") if spans else None


def _word_phones(word: str, g2p: G2P) -> list[str]:
    if not re.fullmatch(r"[A-Za-z']+", word):
        # Digits and other scripts: one open vowel per character keeps the mouth moving with the speech.
        return [_FALLBACK_PHONE] * max(1, min(len(word), 8))
    key = word.lower()
    if key in _COMMON:
        return _COMMON[key].split()
    if len(key) > 2 and key.endswith("e") and key[-2] not in "aeiouyl":
        # A final silent e (name, make): openfacefx's letter rules would voice it.
        return g2p.word(key[:-1]) or [_FALLBACK_PHONE]
    return g2p.word(key) or [_FALLBACK_PHONE]


def _words(text: str, g2p: G2P) -> list[tuple[list[str], float] | None]:
    """Each word's phonemes and duration weight; None marks a phrase break (punctuation)."""
    out: list[tuple[list[str], float] | None] = []
    for token in _TOKEN.findall(text):
        if token in _BREAK:
            if out and out[-1] is not None:
                out.append(None)
            continue
        phones = _word_phones(token, g2p)
        weight = sum(_VOWEL_PRIOR if p[-1].isdigit() else _CONSONANT_PRIOR for p in phones)
        out.append((phones, weight))
    return out if any(w is not None for w in out) else []


def _phrases(words: list[tuple[list[str], float] | None]) -> list[list[tuple[list[str], float]]]:
    phrases: list[list[tuple[list[str], float]]] = [[]]
    for word in words:
        if word is None:
            phrases.append([])
        else:
            phrases[-1].append(word)
    return [p for p in phrases if p]


def _voiced_runs(voiced: np.ndarray, fps: int) -> list[tuple[float, float]]:
    """(start, end) seconds of voiced stretches, gaps under ``MIN_PAUSE_S`` closed."""
    runs: list[list[float]] = []
    padded = np.concatenate([[False], voiced.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for start, end in zip(edges[::2], edges[1::2]):
        t0, t1 = start / fps, end / fps
        if runs and t0 - runs[-1][1] < MIN_PAUSE_S:
            runs[-1][1] = t1
        else:
            runs.append([t0, t1])
    return [(a, b) for a, b in runs]


def _match_boundaries(phrases: list[list[tuple[list[str], float]]], runs: list[tuple[float, float]],
                      chosen: list[int]) -> list[int]:
    """For each chosen pause (in time order) the phrase boundary it falls on, in order.

    Boundary b (1 .. len(phrases)-1) comes before phrase b; the pairing minimises the
    summed difference between the boundary's share of the text and the pause's share
    of the voiced time.
    """
    if not chosen:
        return []
    weights = np.array([sum(w for _, w in phrase) for phrase in phrases])
    text_share = np.cumsum(weights)[:-1] / weights.sum()  # boundary b at index b-1
    lengths = np.array([b - a for a, b in runs])
    speech_share = np.array([lengths[: i + 1].sum() for i in chosen]) / lengths.sum()
    n, m = len(text_share), len(chosen)
    cost = np.full((m + 1, n + 1), np.inf)
    cost[0, :] = 0.0
    for j in range(1, m + 1):
        for b in range(j, n + 1):
            cost[j, b] = min(cost[j, b - 1], cost[j - 1, b - 1] + abs(text_share[b - 1] - speech_share[j - 1]))
    picks, b = [], n
    for j in range(m, 0, -1):
        while cost[j, b] == cost[j, b - 1]:
            b -= 1
        picks.append(b)
        b -= 1
    return picks[::-1]


class _SpeechClock:
    """Maps a share of the voiced time of some runs to seconds, skipping the gaps between them."""

    def __init__(self, runs: list[tuple[float, float]]) -> None:
        self.runs = runs
        self.lengths = np.array([b - a for a, b in runs])
        self.total = float(self.lengths.sum())

    def time(self, share: float) -> float:
        left = min(max(share, 0.0), 1.0) * self.total
        for (start, end), length in zip(self.runs, self.lengths):
            if left <= length:
                return start + left
            left -= length
        return self.runs[-1][1]


def _with_silence(spans: list[tuple[float, float, str]], duration: float) -> tuple[PhonemeSegment, ...]:
    """Segments covering 0..duration: the spans in order (overlaps trimmed), silence in every gap."""
    out: list[PhonemeSegment] = []
    cursor = 0.0
    for start, end, label in sorted(spans):
        start = max(start, cursor)
        if end - start < 1e-4:
            continue
        if start - cursor > 1e-4:
            out.append(PhonemeSegment(SILENCE, cursor, start))
        out.append(PhonemeSegment(label, start, end))
        cursor = end
    if duration - cursor > 1e-4:
        out.append(PhonemeSegment(SILENCE, cursor, duration))
    return tuple(out)
