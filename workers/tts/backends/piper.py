"""Piper neural TTS (ONNX, CPU), the embedded default voice ``en_US-joe-medium``.

piper-tts is GPL-3.0, so it is an optional extra (``pip install talkfarm[tts]``)
and is imported only inside ``_load``. Voices live in ``<model_dir>/piper/`` as
``<name>.onnx`` plus ``<name>.onnx.json``; ``talkfarm-admin models prepare``
copies the embedded one there. ``settings.tts.voice`` may also be an absolute
path to an ``.onnx`` file; a voice named in a request must be a plain name.

Phoneme timings: piper-tts 1.8 patches the voice's ONNX graph in memory
(``include_alignments``, needs the ``onnx`` package that ``piper-tts[alignment]``
brings) so that it also returns how many samples each phoneme id produced.
Those become IPA phoneme timings; stress marks are counted into the phoneme they
precede, length marks into the one they follow, and word gaps and punctuation
are left as gaps. Without ``onnx`` the voice loads unpatched and the stage
estimates word timings instead.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from contracts.text.sentences import primary_language
from workers.tts.base import Speech, Timing, TTSBackend, TTSCapabilities, VoiceInfo, registry
from workers.tts.prepare import config_path, installed_voices, voice_dir, voice_files

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger(__name__)

# Voice names from requests: no separators, so they cannot point outside the voice folder.
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@registry.register("piper")
class PiperTTS(TTSBackend):
    """Speaks with a Piper voice; other installed voices load on first use and stay loaded."""

    capabilities = TTSCapabilities(languages=("en",), streaming=False, gpu=False, phoneme_timings=True)
    version = "2"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._voices: dict[str, PiperVoice] = {}
        self._voices_lock = threading.Lock()

    def available_voices(self) -> list[str]:
        """Names of the voices installed in the voice folder."""
        return installed_voices(self.settings)

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        """Every complete voice in the voice folder, its language read from its JSON config."""
        default = _default_name(settings)
        names = installed_voices(settings)
        voices = [VoiceInfo(name, cls.name, _voice_languages(voice_dir(settings) / voice_files(name)[1]),
                            default=name == default) for name in names]
        configured = Path(settings.tts.voice).expanduser()
        if default not in names and configured.suffix == ".onnx" and configured.is_file():
            voices.append(VoiceInfo(default, cls.name, _voice_languages(config_path(configured)), default=True))
        return voices

    def voice_id(self, voice: str | None) -> str:
        return voice or _default_name(self.settings)

    def model_id(self, voice: str | None) -> str:
        try:
            stat = self.voice_path(None if voice == _default_name(self.settings) else voice).stat()
        except (OSError, PermanentError):
            return ""
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def voice_path(self, voice: str | None = None) -> Path:
        """The ``.onnx`` file of ``voice`` (None: the configured default voice)."""
        if voice is None:
            configured = self.settings.tts.voice
            if configured.endswith(".onnx") or Path(configured).is_absolute():
                return Path(configured).expanduser()
            voice = configured
        if not _VOICE_NAME.match(voice):
            raise PermanentError(f"invalid voice name {voice!r}", code="unknown_voice")
        return voice_dir(self.settings) / voice_files(voice)[0]

    def check(self) -> None:
        """Raise ``ModelMissingError`` when the default voice's files are missing."""
        model = self.voice_path()
        for path in (model, config_path(model)):
            if not path.is_file():
                raise ModelMissingError(
                    f"Piper voice file {path} is missing; run `talkfarm-admin models prepare`"
                )

    def _load(self) -> None:
        self.check()
        self._voice(None)

    def _unload(self) -> None:
        with self._voices_lock:
            self._voices.clear()

    def _voice(self, voice: str | None) -> PiperVoice:
        if voice in (self.settings.tts.voice, _default_name(self.settings)):
            voice = None
        key = voice or ""
        with self._voices_lock:
            loaded = self._voices.get(key)
            if loaded is not None:
                return loaded
            path = self.voice_path(voice)
            if voice is not None and not path.is_file():
                available = ", ".join(self.available_voices()) or "(none)"
                raise PermanentError(
                    f"unknown voice {voice!r}; available voices: {available}", code="unknown_voice"
                )
            loaded = self._open(path)
            self._voices[key] = loaded
            return loaded

    @staticmethod
    def _open(path: Path) -> PiperVoice:
        try:
            from piper import PiperVoice
        except ImportError as e:
            raise PermanentError(
                "piper-tts is not installed: run `pip install talkfarm[tts]` "
                "(piper-tts is GPL-3.0, which is why it is an optional extra)",
                code="backend_unavailable",
            ) from e
        try:
            voice = PiperVoice.load(path, config_path=config_path(path), include_alignments=True)
        except Exception as e:
            # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base class
            # below Exception; a broken config shows up as a ValueError or KeyError.
            raise PermanentError(f"cannot load Piper voice {path}: {e}", code="voice_load_failed") from e
        log.info("loaded Piper voice %s (%d Hz)", path.name, voice.config.sample_rate)
        return voice

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        if not text or not text.strip():
            raise PermanentError("there is no text to speak", code="empty_text")
        piper_voice = self._voice(voice)
        wanted = primary_language(language)
        if wanted and not piper_voice.config.espeak_voice.lower().startswith(wanted):
            # The voice decides the language; a mismatch is worth a note, not a failure.
            log.warning("voice speaks %s, text is tagged %s", piper_voice.config.espeak_voice, language)
        chunks = list(piper_voice.synthesize(text.strip(), include_alignments=True))
        if not chunks or sum(len(chunk.audio_float_array) for chunk in chunks) == 0:
            raise PermanentError(f"nothing speakable in the text ({len(text)} characters)", code="empty_text")
        samples = np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float32, copy=False)
        rate = piper_voice.config.sample_rate
        timings = _phoneme_timings(chunks, rate)
        return Speech(samples, rate, timings or (), timings_from_model=timings is not None)


def _default_name(settings: Settings) -> str:
    """The default voice's name: ``tts.voice`` itself, or its file's stem when it is a path."""
    configured = settings.tts.voice
    if configured.endswith(".onnx") or Path(configured).is_absolute():
        return Path(configured).name[: -len(".onnx")] if configured.endswith(".onnx") else Path(configured).name
    return configured


def _voice_languages(config: Path) -> tuple[str, ...]:
    """The language of a Piper voice from its JSON config ("en_US" → "en")."""
    try:
        data: dict[str, Any] = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    code = (data.get("language") or {}).get("code") or (data.get("espeak") or {}).get("voice") or ""
    primary = primary_language(str(code))
    return (primary,) if primary else ()


_STRESS = frozenset("\u02c8\u02cc")  # ˈ ˌ: belong to the phoneme after them
_BOUNDARIES = frozenset({"^", "$", "_", " "})  # Piper's BOS, EOS, pad and the word gap


def _is_modifier(symbol: str) -> bool:
    """Length marks, tie bars and diacritics: they belong to the phoneme before them."""
    return all(unicodedata.category(c) in ("Lm", "Mn", "Sk") for c in symbol)


def _phoneme_timings(chunks: Sequence[Any], rate: int) -> tuple[Timing, ...] | None:
    """IPA phoneme timings from Piper's alignments, or None when a chunk has none."""
    timings: list[Timing] = []
    offset = 0
    for chunk in chunks:
        alignments: Iterable[Any] | None = chunk.phoneme_alignments
        if alignments is None:
            return None
        cursor = offset
        pending: float | None = None
        for alignment in alignments:
            symbol, start = alignment.phoneme, cursor / rate
            cursor += int(alignment.num_samples)
            end = cursor / rate
            if symbol in _STRESS:
                pending = start if pending is None else pending
            elif symbol in _BOUNDARIES or all(unicodedata.category(c).startswith("P") for c in symbol):
                pending = None
            elif _is_modifier(symbol) and timings and abs(timings[-1].end - start) < 1e-9:
                last = timings[-1]
                timings[-1] = Timing(last.start, end, last.label + symbol, "phoneme")
            else:
                timings.append(Timing(start if pending is None else pending, end, symbol, "phoneme"))
                pending = None
        offset += len(chunk.audio_float_array)
    return tuple(timings)
