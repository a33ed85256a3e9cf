"""Whisper through faster-whisper (CTranslate2): any model size, CPU or CUDA, sequential or batched.

``settings.asr.model`` names a CTranslate2 model folder: an absolute path, or a
folder under ``settings.model_dir`` (the embedded ``whisper-base`` and
``whisper-tiny.en`` are built there by ``talkfarm-admin models prepare``).
Nothing is ever fetched from a hub.

Voice activity detection runs once per call, with the Silero VAD that ships
inside the faster_whisper package (``assets/silero_vad_v6.onnx``, run by
onnxruntime): too little speech fails with ``no_speech`` before Whisper runs;
otherwise leading and trailing silence (and long pauses) are cut out and the
speech is grouped into pieces of at most 30 s, Whisper's window. The sequential
decoder (one piece at a time) and the batched pipeline (``asr.batched``,
faster-whisper's ``BatchedInferencePipeline``, ``asr.batch_size`` pieces per
forward pass) both decode exactly those pieces, each with log-mel features
computed from the piece alone, so they see the same audio and the same features.

faster-whisper's sequential ``transcribe`` encodes the first 30 s window twice
when it detects the language (once to detect, once to decode). Here the window
is encoded once, the language is detected from that encoding, and the model
is handed the encoding to reuse: it is used only for a window equal to the
one it was computed from, so the transcript is the same, one encoder pass sooner.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contracts.audio import is_silent
from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from workers.asr.base import SAMPLE_RATE, ASRBackend, ASRCapabilities, Transcription, registry

if TYPE_CHECKING:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

log = logging.getLogger(__name__)

_PREPARE_HINT = "run `talkfarm-admin models prepare`"
# Less detected speech than this is a cough or a click: Whisper only hallucinates on it.
MIN_SPEECH_SECONDS = 0.2
WINDOW_SECONDS = 30.0


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when CTranslate2 sees a GPU, else ``cpu``; other names pass through."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    """``auto`` → ``float16`` on CUDA, ``int8`` on CPU; other types pass through."""
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


@registry.register("faster-whisper")
class FasterWhisperASR(ASRBackend):
    """Transcribes with a CTranslate2 Whisper model; detects the language unless it is given."""

    capabilities = ASRCapabilities(languages=(), streaming=False, batching=True, gpu=True)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model: WhisperModel | None = None
        self._pipeline: BatchedInferencePipeline | None = None
        self.device = ""
        self.compute_type = ""

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

    def output_options(self) -> dict[str, Any]:
        self.load()  # the device and compute type are resolved there
        options = self.settings.asr
        return {
            # The folder's name and the weights' size tell models apart without hashing 150 MB.
            "model": self.model_path.name,
            "model_bytes": (self.model_path / "model.bin").stat().st_size,
            "compute_type": self.compute_type,
            "beam_size": options.beam_size,
            "batched": options.batched,
        }

    def _load(self) -> None:
        self.check()
        try:
            from faster_whisper import BatchedInferencePipeline
        except ImportError as e:
            raise PermanentError(
                "faster-whisper is not installed: run `pip install talkfarm[asr]`",
                code="backend_unavailable",
            ) from e
        options = self.settings.asr
        device = resolve_device(options.device)
        compute_type = resolve_compute_type(options.compute_type, device)
        try:
            model = reusing_whisper_model()(
                str(self.model_path),
                device=device,
                compute_type=compute_type,
                cpu_threads=options.cpu_threads,
                num_workers=max(1, options.num_workers),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as e:
            # CTranslate2 raises RuntimeError for a broken model.bin, an unknown
            # compute type or a device it cannot use.
            raise PermanentError(
                f"cannot load ASR model {self.model_path} on {device}/{compute_type}: {e}",
                code="model_load_failed",
            ) from e
        self._model, self.device, self.compute_type = model, device, compute_type
        self._pipeline = BatchedInferencePipeline(model=model) if options.batched else None
        log.info("loaded Whisper model %s on %s (%s)%s", self.model_path, device, compute_type,
                 f", batched by {options.batch_size}" if options.batched else "")

    def _unload(self) -> None:
        self._model = self._pipeline = None

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcription:
        model = self._model
        assert model is not None, "load() runs before _transcribe()"
        if audio.size == 0 or is_silent(audio):
            # Digital silence: no need to run the VAD or the model.
            raise PermanentError("the audio is silent", code="no_speech")
        pieces = speech_pieces(audio)
        speech_seconds = sum(len(piece) for piece in pieces) / SAMPLE_RATE
        if speech_seconds < MIN_SPEECH_SECONDS:
            raise PermanentError("no speech was found in the audio", code="no_speech")
        if language is not None:
            language = language.split("-")[0].lower()
            if language not in model.supported_languages:
                raise PermanentError(
                    f"language {language!r} is not supported by this ASR model", code="unsupported_language"
                )
        decode = self._decode_batched if self._pipeline is not None else self._decode_sequential
        text, detected, probability = decode(pieces, language)
        if not text:
            raise PermanentError("no speech was found in the audio", code="no_speech")
        return Transcription(
            text=text, language=detected, language_probability=probability, speech_seconds=speech_seconds
        )

    def _decode_batched(self, pieces: list[np.ndarray], language: str | None) -> tuple[str, str, float]:
        """The pieces laid end to end, one clip each; the pipeline computes each clip's features on its own."""
        assert self._pipeline is not None
        options = self.settings.asr
        bounds = (np.cumsum([0] + [len(piece) for piece in pieces]) / SAMPLE_RATE).tolist()
        segments, info = self._pipeline.transcribe(
            np.concatenate(pieces), language=language, beam_size=options.beam_size,
            batch_size=options.batch_size, vad_filter=False, without_timestamps=True,
            clip_timestamps=[{"start": start, "end": end} for start, end in zip(bounds[:-1], bounds[1:])],
        )
        # ``segments`` is lazy: decoding happens while it is consumed here.
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return text, info.language, float(info.language_probability)

    def _decode_sequential(self, pieces: list[np.ndarray], language: str | None) -> tuple[str, str, float]:
        """One piece (at most one window) at a time, as the batched pipeline sees them."""
        model = self._model
        assert model is not None
        detected = self._detect_language(pieces[0]) if language is None else None
        texts: list[str] = []
        for piece in pieces:
            segments, info = model.transcribe(
                piece, language=detected[0] if detected else language, beam_size=self.settings.asr.beam_size,
                vad_filter=False, without_timestamps=True, condition_on_previous_text=False,
            )
            texts.extend(segment.text.strip() for segment in segments)
        language, probability = detected or (info.language, info.language_probability)
        return " ".join(texts).strip(), language, float(probability)

    def _detect_language(self, piece: np.ndarray) -> tuple[str, float] | None:
        """The language of ``piece``'s window, from the encoding that decoding then reuses; None for .en models."""
        from faster_whisper.audio import pad_or_trim

        model = self._model
        assert model is not None
        if not model.model.is_multilingual:
            return None
        # The window exactly as WhisperModel.generate_segments cuts it from the same features:
        # every frame but the last, at most 30 s, padded to 30 s.
        features = model.feature_extractor(piece)
        window = pad_or_trim(features[:, :min(model.feature_extractor.nb_max_frames, features.shape[-1] - 1)])
        encoded = model.encode(window)
        token, probability = model.model.detect_language(encoded)[0][0]
        model.offer_encoding(window, encoded)
        return token[2:-2], float(probability)  # "<|en|>" → "en"


def speech_pieces(audio: np.ndarray) -> list[np.ndarray]:
    """The speech in ``audio`` (16 kHz) by Silero VAD, grouped into pieces of at most 30 s.

    Silence before the first and after the last word is dropped (keeping the
    VAD's 400 ms pad), and so is any pause over 2 s. Empty when there is no speech.
    """
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    chunks = get_speech_timestamps(audio, VadOptions(max_speech_duration_s=WINDOW_SECONDS), SAMPLE_RATE)
    if not chunks:
        return []
    pieces, _ = collect_chunks(audio, chunks, SAMPLE_RATE, max_duration=WINDOW_SECONDS)
    return [piece for piece in pieces if piece.size]


@functools.cache
def reusing_whisper_model() -> type[WhisperModel]:
    """``WhisperModel`` that reuses an encoding offered for the window it is about to encode (built lazily:
    faster_whisper is imported only by the worker that loads it)."""
    from faster_whisper import WhisperModel

    class ReusingWhisperModel(WhisperModel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._offered = threading.local()
            self.encoder_passes = 0

        def offer_encoding(self, features: np.ndarray, encoded: Any) -> None:
            """Let the next ``encode`` of this thread return ``encoded`` if it is asked for ``features``."""
            self._offered.value = (features, encoded)

        def encode(self, features: np.ndarray) -> Any:
            offered, self._offered.value = getattr(self._offered, "value", None), None
            if offered is not None and offered[0].shape == features.shape and np.array_equal(offered[0], features):
                return offered[1]
            self.encoder_passes += 1
            return super().encode(features)

    return ReusingWhisperModel
