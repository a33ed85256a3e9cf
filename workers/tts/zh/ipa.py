"""Baker phoneme symbols → IPA phonemes, for the timings the animation stage reads.

An initial is one IPA consonant; a final (its tone digit dropped) is one to three
IPA segments, among which the final's duration is shared evenly by the caller.
``^`` (no initial), ``sil``, ``#0`` and ``eos`` are not sounds and map to nothing.
"""

from __future__ import annotations

INITIALS = {
    "b": "p", "p": "pʰ", "m": "m", "f": "f", "d": "t", "t": "tʰ", "n": "n", "l": "l",
    "g": "k", "k": "kʰ", "h": "x", "j": "tɕ", "q": "tɕʰ", "x": "ɕ", "zh": "ʈʂ", "ch": "ʈʂʰ",
    "sh": "ʂ", "r": "ɻ", "z": "ts", "c": "tsʰ", "s": "s",
}

FINALS = {
    "a": ("a",), "ai": ("a", "i"), "an": ("a", "n"), "ang": ("a", "ŋ"), "ao": ("a", "u"),
    "e": ("ɤ",), "ei": ("e", "i"), "en": ("ə", "n"), "eng": ("ə", "ŋ"), "er": ("ɚ",),
    "i": ("i",), "ia": ("j", "a"), "ian": ("j", "ɛ", "n"), "iang": ("j", "a", "ŋ"), "iao": ("j", "a", "u"),
    "ie": ("j", "e"), "ii": ("ɹ̩",), "iii": ("ɻ̩",), "in": ("i", "n"), "ing": ("i", "ŋ"),
    "iong": ("j", "ʊ", "ŋ"), "iou": ("j", "o", "u"), "o": ("o",), "ong": ("ʊ", "ŋ"), "ou": ("o", "u"),
    "u": ("u",), "ua": ("w", "a"), "uai": ("w", "a", "i"), "uan": ("w", "a", "n"), "uang": ("w", "a", "ŋ"),
    "uei": ("w", "e", "i"), "uen": ("w", "ə", "n"), "ueng": ("w", "ə", "ŋ"), "uo": ("w", "o"),
    "v": ("y",), "van": ("ɥ", "ɛ", "n"), "ve": ("ɥ", "e"), "vn": ("y", "n"),
}


def ipa(symbol: str) -> tuple[str, ...]:
    """The IPA segments of one Baker symbol (empty for pauses and markers)."""
    if symbol in INITIALS:
        return (INITIALS[symbol],)
    if symbol[-1:].isdigit():
        return FINALS.get(symbol[:-1], ())
    return ()
