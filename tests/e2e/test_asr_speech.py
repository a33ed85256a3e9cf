"""Whisper base on speech spoken by Piper: word error rate, every upload format, VAD trimming, batched decoding.

The round trip's word error rate is measured after an honest normalisation,
applied the same way to the reference and to the transcript: lower case,
hyphens become spaces, punctuation other than apostrophes goes, and every
run of digits is spelled out in words ("95" → "ninety five"), so that
"95 points" and "ninety-five points" count as the same words. Nothing else is
mapped: no synonyms, no spelling variants, no dropped words. The sentences
avoid what has two legitimate spellings (times, years, currency, titles,
British/American spelling) rather than teaching the normaliser about them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from contracts.audio import decode_audio, resample, wav_bytes
from contracts.errors import PermanentError
from contracts.settings import Settings
from tests.unit.test_audio import encode
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry

pytestmark = pytest.mark.e2e

ROUND_TRIP = [
    "My name is Alice and I live in Paris.",
    "How many apples did John buy at the market yesterday?",
    "The train leaves at seven and arrives in London before noon.",
    "Can you call Michael and tell him the meeting moved to Friday?",
    "There are 12 months in a year and 7 days in a week.",
    "Sarah scored 95 points in the final game of the season.",
    "What is the capital city of Australia?",
    "Please send 250 letters to my brother Tom by Tuesday.",
    "Is it true that the Amazon river flows through Brazil?",
    "We counted 3 cats, 4 dogs and 18 birds in the garden.",
]
MAX_WER = 0.10

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(number: int) -> str:
    """An integer below a billion in words, the way Americans say it: 250 → "two hundred fifty"."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        return _TENS[number // 10] + ("" if number % 10 == 0 else " " + _ONES[number % 10])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if number >= size:
            rest = number % size
            return f"{spell(number // size)} {name}" + ("" if rest == 0 else " " + spell(rest))
    raise AssertionError("unreachable")


def normalise(text: str) -> list[str]:
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 → 1000
    text = re.sub(r"\d+", lambda m: f" {spell(int(m.group()))} ", text)
    return re.findall(r"[a-z']+", text)


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Errors over the whole set divided by the reference words of the whole set."""
    errors = sum(edit_distance(normalise(ref), normalise(hyp)) for ref, hyp in pairs)
    return errors / sum(len(normalise(ref)) for ref, _ in pairs)


@pytest.fixture(scope="module")
def tts(model_settings: Settings) -> TTSBackend:
    backend = tts_registry.create("piper", model_settings)
    backend.load()
    return backend


def with_asr(settings: Settings, **asr: object) -> Settings:
    return settings.model_copy(update={"asr": settings.asr.model_copy(update=asr)})


@pytest.fixture(scope="module")
def whisper_base(model_settings: Settings) -> ASRBackend:
    backend = asr_registry.create("faster-whisper", with_asr(model_settings, model="whisper-base", batched=False))
    backend.load()
    return backend


@pytest.fixture(scope="module")
def whisper_base_batched(model_settings: Settings) -> ASRBackend:
    backend = asr_registry.create("faster-whisper", with_asr(model_settings, model="whisper-base", batched=True))
    backend.load()
    return backend


@pytest.fixture(scope="module")
def piper_clips(tts: TTSBackend) -> dict[str, tuple[np.ndarray, int]]:
    """Each round-trip sentence spoken by Piper: (float samples, sample rate)."""
    clips = {}
    for sentence in ROUND_TRIP:
        speech = tts.synthesize(sentence)
        clips[sentence] = (speech.samples, speech.sample_rate)
    return clips


def as_upload(samples: np.ndarray, rate: int) -> np.ndarray:
    """Through a WAV file and decode_audio, as an upload reaches the ASR stage."""
    return decode_audio(wav_bytes(samples, rate), SAMPLE_RATE)


def test_round_trip_word_error_rate(whisper_base: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]]) -> None:
    pairs = []
    for sentence, (samples, rate) in piper_clips.items():
        result = whisper_base.transcribe(as_upload(samples, rate))
        assert result.language == "en" and result.language_probability > 0.5, result
        pairs.append((sentence, result.text))
    wer = word_error_rate(pairs)

    print(f"\nPiper → Whisper base over {len(pairs)} sentences: WER {wer:.1%}")
    for sentence, heard in pairs:
        errors = edit_distance(normalise(sentence), normalise(heard))
        print(f"  {errors} error(s)  said: {sentence!r}  heard: {heard!r}")
    assert wer <= MAX_WER


def test_normaliser_is_honest() -> None:
    assert normalise("Sarah scored 95 points.") == normalise("sarah scored ninety-five points")
    assert normalise("Please send 250 letters") == "please send two hundred fifty letters".split()
    assert normalise("1,000 birds") == "one thousand birds".split()
    assert word_error_rate([("We counted 3 cats.", "we counted three hats")]) == pytest.approx(1 / 4)
    assert word_error_rate([("a b c d", "a c d e")]) == pytest.approx(2 / 4)


# (container, codec, rate, channels, muxer options): every format a user may upload.
FORMATS = [
    pytest.param("wav", "pcm_u8", 8000, 1, None, id="wav-8bit-8k"),
    pytest.param("wav", "pcm_s16le", 44100, 2, None, id="wav-16bit-44k-stereo"),
    pytest.param("wav", "pcm_s24le", 48000, 1, None, id="wav-24bit-48k"),
    pytest.param("wav", "pcm_s32le", 22050, 2, None, id="wav-32bit-22k-stereo"),
    pytest.param("mp3", "libmp3lame", 44100, 2, None, id="mp3"),
    pytest.param("ogg", "libopus", 48000, 1, None, id="ogg-opus"),
    pytest.param("webm", "libopus", 48000, 1, {"live": "1"}, id="webm-opus-media-recorder"),
    pytest.param("ipod", "aac", 44100, 2, None, id="m4a-aac"),
    pytest.param("flac", "flac", 16000, 1, None, id="flac"),
]


@pytest.mark.parametrize("container, codec, rate, channels, options", FORMATS)
def test_every_upload_format_transcribes(
    whisper_base: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]],
    container: str, codec: str, rate: int, channels: int, options: dict[str, str] | None,
) -> None:
    sentence = ROUND_TRIP[8]
    samples, piper_rate = piper_clips[sentence]
    at_rate = resample(samples, piper_rate, rate)
    data = encode(container, codec, rate, channels, samples=np.repeat(at_rate[None, :], channels, axis=0),
                  options=options)

    audio = decode_audio(data, SAMPLE_RATE)
    result = whisper_base.transcribe(audio)

    assert len(audio) / SAMPLE_RATE == pytest.approx(len(samples) / piper_rate, abs=0.15)
    if codec == "pcm_u8" and rate == 8000:
        # Telephone band with 8-bit quantisation noise: a word may go (it heard "is a crew that" once).
        assert word_error_rate([(sentence, result.text)]) <= 0.25, result.text
    else:
        assert normalise(result.text) == normalise(sentence), result.text
    assert result.language == "en"


def test_vad_trims_leading_and_trailing_silence(
    whisper_base: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]]
) -> None:
    # Whisper base hears Piper's "Australia" as "Bosch, Traelia" in some of Piper's (random) takes;
    # this sentence it heard within one word in 20 of 20 takes.
    sentence = ROUND_TRIP[0]
    speech = as_upload(*piper_clips[sentence])
    hiss = (0.002 * np.random.default_rng(3).standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    padded = np.concatenate([hiss, speech, hiss])

    result = whisper_base.transcribe(padded)
    clean = whisper_base.transcribe(speech)

    # The hiss is cut away: the padded clip is heard as the clip alone (Piper's voice varies from run to
    # run, so the clip alone is the reference, and it must be close to the sentence), give or take one
    # word: the 0.4 s of hiss the VAD keeps on each side once turned "Alice" into "Alistair".
    one_word = 1 / len(normalise(clean.text))
    assert word_error_rate([(clean.text, result.text)]) <= one_word + 1e-9, (result.text, clean.text)
    assert word_error_rate([(sentence, clean.text)]) <= 0.25, clean.text
    # Six seconds of hiss are gone; the VAD keeps up to 0.4 s of pad on each side of the speech.
    assert result.speech_seconds <= len(speech) / SAMPLE_RATE + 0.8
    assert result.speech_seconds < len(padded) / SAMPLE_RATE - 5.0


def test_batched_pipeline_gives_the_same_transcripts(
    whisper_base: ASRBackend, whisper_base_batched: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]]
) -> None:
    clips = [as_upload(*piper_clips[sentence]) for sentence in ROUND_TRIP[:3]]
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    # About 45 s of speech with pauses: two 30 s windows, which the batched pipeline decodes together.
    long = np.concatenate([part for clip in [as_upload(*c) for c in piper_clips.values()] for part in (clip, pause)])
    assert len(long) / SAMPLE_RATE > 35
    for audio in [*clips, long]:
        sequential = whisper_base.transcribe(audio)
        batched = whisper_base_batched.transcribe(audio)
        assert batched.text == sequential.text
        assert batched.language == sequential.language == "en"
        assert batched.speech_seconds == sequential.speech_seconds


def test_forced_language_has_probability_one(
    whisper_base: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]]
) -> None:
    result = whisper_base.transcribe(as_upload(*piper_clips[ROUND_TRIP[0]]), language="en-GB")

    assert result.language == "en" and result.language_probability == 1.0


def test_audio_over_the_limit_is_refused_before_decoding(model_settings: Settings) -> None:
    settings = model_settings.model_copy(
        update={"limits": model_settings.limits.model_copy(update={"max_audio_seconds": 5.0})}
    )
    backend = asr_registry.create("faster-whisper", settings)

    with pytest.raises(PermanentError) as caught:
        backend.transcribe(np.full(6 * SAMPLE_RATE, 0.1, dtype=np.float32))

    assert caught.value.code == "audio_too_long"
    assert not backend.loaded  # refused before the model was even loaded


def test_cache_key_follows_audio_model_and_options(model_settings: Settings, whisper_base: ASRBackend) -> None:
    key = whisper_base.result_key("a" * 64 + ".wav", None)
    tiny = asr_registry.create("faster-whisper", with_asr(model_settings, model="whisper-tiny.en"))
    beam = asr_registry.create("faster-whisper", with_asr(model_settings, model="whisper-base", beam_size=5))
    same = asr_registry.create("faster-whisper", with_asr(model_settings, model="whisper-base", cpu_threads=1))

    assert whisper_base.result_key("a" * 64 + ".wav", None) == key
    assert same.result_key("a" * 64 + ".wav", None) == key  # threads do not change the transcript
    others = {
        whisper_base.result_key("b" * 64 + ".wav", None),
        whisper_base.result_key("a" * 64 + ".wav", "en"),
        tiny.result_key("a" * 64 + ".wav", None),
        beam.result_key("a" * 64 + ".wav", None),
    }
    assert key not in others and len(others) == 4


def test_language_detection_reuses_the_first_encoding(
    whisper_base: ASRBackend, piper_clips: dict[str, tuple[np.ndarray, int]]
) -> None:
    from faster_whisper import WhisperModel

    from workers.asr.backends.faster_whisper import speech_pieces

    audio = as_upload(*piper_clips[ROUND_TRIP[3]])
    model = getattr(whisper_base, "_model")
    before = model.encoder_passes
    ours = whisper_base.transcribe(audio)
    assert model.encoder_passes - before == 1

    # Stock faster-whisper on the same speech detects the language with a second pass over the encoder.
    [speech] = speech_pieces(audio)
    before = model.encoder_passes
    segments, info = WhisperModel.transcribe(
        model, speech, beam_size=1, vad_filter=False, without_timestamps=True, condition_on_previous_text=False,
    )
    stock = " ".join(segment.text.strip() for segment in segments)
    assert model.encoder_passes - before == 2
    assert (ours.text, ours.language) == (stock, info.language)
    assert ours.language_probability == pytest.approx(info.language_probability, abs=0.02)
