"""Whisper through faster-whisper (CTranslate2): any model size, CPU or CUDA.

``settings.asr.model`` names a CTranslate2 model folder: an absolute path, or a
folder under ``settings.model_dir`` (the embedded ``whisper-base`` and
``whisper-tiny.en`` are built there by ``talkfarm-admin models prepare``).
Nothing is ever fetched from a hub. faster-whisper's Silero VAD (an ONNX file
inside the faster_whisper package) drops non-speech before decoding.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from workers.asr.base import SAMPLE_RATE, ASRBackend, ASRCapabilities, Transcription, registry
from workers.audio import is_silent
from workers.errors import ModelMissingError, PermanentError
from workers.settings import Settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

_PREPARE_HINT = "run `talkfarm-admin models prepare`"
# Less detected speech than this is a cough or a click: Whisper only hallucinates on it.
MIN_SPEECH_SECONDS = 0.2


@registry.register("faster-whisper")
class FasterWhisperASR(ASRBackend):
    """Transcribes with a CTranslate2 Whisper model; detects the language unless it is given."""

    capabilities = ASRCapabilities(languages=(), streaming=False, batching=False, gpu=True)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model: WhisperModel | None = None
        self._detect_speech: Callable[[np.ndarray], list[dict[str, int]]] | None = None

    @property
    def model_path(self) -> Path:
        """The model folder that ``settings.asr.model`` names."""
        configured = Path(self.settings.asr.model).expanduser()
        return configured if configured.is_absolute() else self.settings.model_dir / configured

    def check(self) -> None:
        """Raise ``ModelMissingError`` when the model folder or its ``model.bin`` is missing."""
        folder = self.model_path
        if not folder.is_dir():
            raise ModelMissingError(f"ASR model folder {folder} does not exist; {_PREPARE_HINT}")
        if not (folder / "model.bin").is_file():
            raise ModelMissingError(f"ASR model folder {folder} has no model.bin; {_PREPARE_HINT}")

    def _load(self) -> None:
        self.check()
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.vad import get_speech_timestamps
        except ImportError as e:
            raise PermanentError(
                "faster-whisper is not installed: run `pip install talkfarm[asr]`",
                code="backend_unavailable",
            ) from e
        options = self.settings.asr
        try:
            self._model = WhisperModel(
                str(self.model_path),
                device=options.device,
                compute_type=options.compute_type,
                cpu_threads=options.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            # CTranslate2 raises RuntimeError for a broken model.bin, an unknown
            # compute type or a device it cannot use.
            raise PermanentError(
                f"cannot load ASR model {self.model_path} on {options.device}/{options.compute_type}: {e}",
                code="model_load_failed",
            ) from e
        self._detect_speech = get_speech_timestamps
        log.info("loaded Whisper model %s on %s (%s)", self.model_path, options.device, options.compute_type)

    def _unload(self) -> None:
        self._model = None
        self._detect_speech = None

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription:
        model, detect_speech = self._model, self._detect_speech
        assert model is not None and detect_speech is not None, "load() runs before _transcribe()"
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size == 0 or is_silent(samples):
            # Digital silence: no need to run the VAD or the model.
            raise PermanentError("the audio is silent", code="no_speech")
        # The same Silero VAD that vad_filter runs (about 2 ms per second of audio),
        # checked first because Whisper still runs language detection on empty input.
        speech = sum(chunk["end"] - chunk["start"] for chunk in detect_speech(samples)) / SAMPLE_RATE
        if speech < MIN_SPEECH_SECONDS:
            raise PermanentError("no speech was found in the audio", code="no_speech")
        if language is not None:
            language = language.split("-")[0].lower()
            if language not in model.supported_languages:
                raise PermanentError(
                    f"language {language!r} is not supported by this ASR model", code="unsupported_language"
                )
        segments, info = model.transcribe(
            samples,
            language=language,
            beam_size=self.settings.asr.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        # ``segments`` is lazy: decoding happens while it is consumed here.
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not text:
            raise PermanentError("no speech was found in the audio", code="no_speech")
        return Transcription(
            text=text,
            language=info.language,
            language_probability=float(info.language_probability),
            speech_seconds=float(info.duration_after_vad),
        )
