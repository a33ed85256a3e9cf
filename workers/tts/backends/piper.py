"""Piper neural TTS (ONNX, CPU), the embedded default voice ``en_US-joe-medium``.

piper-tts is GPL-3.0, so it is an optional extra (``pip install talkfarm[tts]``)
and is imported only inside ``_load``. Voices live in ``<model_dir>/piper/`` as
``<name>.onnx`` plus ``<name>.onnx.json``; ``talkfarm-admin models prepare``
copies the embedded one there. ``settings.tts.voice`` may also be an absolute
path to an ``.onnx`` file; a voice named in a request must be a plain name.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workers.audio import resample
from workers.errors import ModelMissingError, PermanentError
from workers.settings import Settings
from workers.tts.base import Speech, TTSBackend, TTSCapabilities, registry
from workers.tts.prepare import config_path, installed_voices, voice_dir, voice_files

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger(__name__)

# Voice names from requests: no separators, so they cannot point outside the voice folder.
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@registry.register("piper")
class PiperTTS(TTSBackend):
    """Speaks with a Piper voice; other installed voices load on first use and stay loaded."""

    capabilities = TTSCapabilities(languages=("en",), streaming=False, gpu=False)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._voices: dict[str, PiperVoice] = {}
        self._voices_lock = threading.Lock()

    def available_voices(self) -> list[str]:
        """Names of the voices installed in the voice folder."""
        return installed_voices(self.settings)

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
        if voice == self.settings.tts.voice:
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
            voice = PiperVoice.load(path, config_path=config_path(path))
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
        if language and not piper_voice.config.espeak_voice.startswith(language.split("-")[0].lower()):
            # The voice decides the language; a mismatch is worth a note, not a failure.
            log.warning("voice speaks %s, text is tagged %s", piper_voice.config.espeak_voice, language)
        chunks = [chunk.audio_float_array for chunk in piper_voice.synthesize(text.strip())]
        if not chunks or sum(len(chunk) for chunk in chunks) == 0:
            raise PermanentError(f"nothing speakable in the text {text[:80]!r}", code="empty_text")
        samples = np.concatenate(chunks).astype(np.float32, copy=False)
        voice_rate = piper_voice.config.sample_rate
        target_rate = self.settings.tts.sample_rate
        if target_rate != voice_rate:
            samples = resample(samples, voice_rate, target_rate)
        return Speech(samples=samples, sample_rate=target_rate)
