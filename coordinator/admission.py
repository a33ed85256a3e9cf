"""Admission: checking a job request before anything is stored or published.

Everything here is blocking (image and audio decoding, reading text through the
spoken-text front end) and is called through ``asyncio.to_thread``. Each refusal
is an ``ApiError`` with a code a client can act on.
"""

from __future__ import annotations

import io
import uuid
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from contracts.audio import decode_audio, is_silent
from contracts.catalog import StageOffer
from contracts.errors import PermanentError
from contracts.payload import Mode
from contracts.settings import LimitSettings
from contracts.text.sentences import primary_language
from contracts.text.spoken import languages_in, to_spoken
from contracts.voices import backend_for_language, find_voice, languages_of
from coordinator.errors import ApiError

MODES: tuple[Mode, ...] = ("chat", "speak", "lipsync")
MAX_FACE_INDEX = 15  # the animation stage looks at the 16 largest faces
_CHECK_RATE = 16_000


@dataclass(frozen=True)
class CheckedAudio:
    data: bytes
    seconds: float


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ApiError(422, "bad_mode", f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    return mode


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(422, f"bad_{what}", f"{what} must be a UUID, got {value[:60]!r}") from None


def check_inputs(mode: Mode, has_audio: bool, text: str | None) -> None:
    if mode == "chat" and has_audio == (text is not None):
        raise ApiError(422, "bad_input", "chat mode takes either `audio` or `text`, exactly one of them")
    if mode == "speak" and text is None:
        raise ApiError(422, "text_required", "speak mode needs `text`")
    if mode == "speak" and has_audio:
        raise ApiError(422, "bad_input", "speak mode takes `text`, not `audio`")
    if mode == "lipsync" and not has_audio:
        raise ApiError(422, "audio_required", "lipsync mode needs `audio`")
    if mode == "lipsync" and text is not None:
        raise ApiError(422, "bad_input", "lipsync mode takes `audio`, not `text`")


def check_face(face: str | None) -> int:
    """The `face` field: the index of the face to animate among those found, largest first (default 0).

    Whether the photo has that many faces is the animation stage's finding (``no_face``).
    """
    if face is None or not face.strip():
        return 0
    value = face.strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_FACE_INDEX:
        raise ApiError(422, "bad_face", f"`face` must be a whole number from 0 (the largest face) "
                                        f"to {MAX_FACE_INDEX}, got {value[:20]!r}")
    return int(value)


def check_voice(voice: str, language: str | None, tts: StageOffer | None) -> str:
    """The voice must be one the TTS workers offer (``tts``: their published offer).

    Before any TTS worker has published its offer the voice cannot be checked here; the TTS
    stage then refuses an unknown one itself (the job fails with ``unknown_voice``).
    """
    if tts is None:
        return voice
    preferred = backend_for_language(tts.language_routes, tts.default_backend, language)
    if find_voice(tts.voices, voice, preferred) is None:
        names = sorted({v.name for v in tts.voices})
        raise ApiError(422, "unknown_voice",
                       f"unknown voice {voice!r}; GET /v1/voices lists them: {', '.join(names[:20]) or '(none)'}")
    return voice


def check_speech(mode: Mode, text: str | None, language: str | None, tts: StageOffer | None) -> None:
    """What the TTS stage will be asked to say must be sayable by the voices of ``tts`` (its published offer).

    A ``speak`` text with nothing to say once normalised ("...", emoji only) is ``nothing_to_say``.
    ``unsupported_language`` names the languages the voices speak, when no voice speaks: the
    request's ``language``; any language of a ``speak`` text; the main language of a typed ``chat``
    question (the model answers in the language it is asked in, and a reply in a language no voice
    speaks could not be said; a question quoting a word of another language is fine). Before any
    TTS worker has published its offer the languages cannot be checked here; the TTS stage then
    refuses a text whose main language it cannot speak itself.
    """
    if mode == "lipsync":
        return
    spoken = to_spoken(text, language) if mode == "speak" and text is not None else None
    if spoken is not None and not spoken.has_speech:
        raise ApiError(422, "nothing_to_say", "`text` has nothing to say once read aloud "
                                              "(only punctuation, symbols, emoji or code)")
    if tts is None:
        return
    supported = languages_of(tts.voices)
    asked = [primary_language(language) or language] if language else []
    if spoken is not None:
        asked += spoken.languages
    elif text is not None:
        asked += languages_in(text)[:1]
    missing = [tag for tag in dict.fromkeys(asked) if tag not in supported]
    if missing:
        raise ApiError(422, "unsupported_language",
                       f"no installed voice speaks {', '.join(missing)}; the voices speak "
                       f"{', '.join(supported) or '(none)'} (GET /v1/voices)")


def check_text(text: str | None, limits: LimitSettings) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise ApiError(422, "empty_text", "`text` is empty")
    if len(text) > limits.max_text_chars:
        raise ApiError(422, "text_too_long",
                       f"`text` has {len(text)} characters; the limit is {limits.max_text_chars}")
    return text


def check_image(data: bytes, limits: LimitSettings) -> str:
    """Fully decode the portrait; returns the file extension to store it under."""
    if not data:
        raise ApiError(422, "bad_image", "the portrait file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > limits.max_image_pixels:
                    raise ApiError(422, "image_too_large",
                                   f"the portrait has {image.width}x{image.height} pixels; "
                                   f"the limit is {limits.max_image_pixels} pixels")
                fmt = (image.format or "").lower()
                image.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise ApiError(415, "bad_image", "the portrait is not an image that can be decoded") from e
    return {"jpeg": "jpg", "png": "png", "webp": "webp", "bmp": "bmp", "tiff": "tif"}.get(fmt, "img")


def check_audio(data: bytes, limits: LimitSettings) -> CheckedAudio:
    """Decode the uploaded audio once to refuse what no stage could use."""
    if not data:
        raise ApiError(422, "empty_audio", "the audio file is empty")
    try:
        samples = decode_audio(data, _CHECK_RATE, max_seconds=limits.max_audio_seconds)
    except PermanentError as e:
        status = 415 if e.code == "bad_audio" else 422
        raise ApiError(status, e.code, e.message) from e
    seconds = len(samples) / _CHECK_RATE
    if is_silent(np.asarray(samples)):
        raise ApiError(422, "no_speech", "the audio holds only silence")
    return CheckedAudio(data, seconds)
