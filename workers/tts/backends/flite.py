"""CMU Flite through its command-line program: the permissive-licence fallback voice.

Flite (BSD-style licence) is a Debian package (``apt-get install flite``), not a
Python dependency, so this backend needs no extra. Its voices are compiled into
the binary (``kal``, ``slt``, ``rms``, ``awb``...); ``flite -lv`` lists them and
a requested voice must be one of those, because ``-voice`` would also accept a
file path or a URL. Each call runs the binary with an argument list (no shell)
in a private temporary folder, so concurrent calls never share files. English only.

Phoneme timings come from flite itself: ``-psdur`` prints each utterance's
segments with their end times, in ARPAbet, which is mapped to IPA here.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from contracts.audio import read_wav
from contracts.errors import ModelMissingError, PermanentError, StageTimeout
from contracts.settings import Settings
from workers.tts.base import Speech, Timing, TTSBackend, TTSCapabilities, VoiceInfo, registry

log = logging.getLogger(__name__)

DEFAULT_VOICE = "slt"
_INSTALL_HINT = "install it with `apt-get install flite`"
_LIST_TIMEOUT = 10.0
# flite's US English phone set (ARPAbet, lower case) in IPA; "pau" is a pause.
_ARPABET_IPA = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ", "ay": "aɪ", "b": "b",
    "ch": "tʃ", "d": "d", "dh": "ð", "dx": "ɾ", "eh": "ɛ", "el": "l̩", "em": "m̩", "en": "n̩", "er": "ɝ",
    "ey": "eɪ", "f": "f", "g": "ɡ", "hh": "h", "ih": "ɪ", "ix": "ɨ", "iy": "i", "jh": "dʒ", "k": "k",
    "l": "l", "m": "m", "n": "n", "ng": "ŋ", "nx": "ɾ̃", "ow": "oʊ", "oy": "ɔɪ", "p": "p", "r": "ɹ",
    "s": "s", "sh": "ʃ", "t": "t", "th": "θ", "uh": "ʊ", "uw": "u", "ux": "ʉ", "v": "v", "w": "w",
    "wh": "ʍ", "y": "j", "z": "z", "zh": "ʒ",
}


@registry.register("flite")
class FliteTTS(TTSBackend):
    """Speaks with one of the voices built into the ``flite`` program."""

    capabilities = TTSCapabilities(languages=("en",), streaming=False, gpu=False, phoneme_timings=True)
    version = "2"
    # Flite speaks a minute of audio in well under a second; this only stops a hung process.
    timeout_seconds: float = 60.0

    def __init__(self, settings: Settings, binary: str = "flite") -> None:
        super().__init__(settings)
        self._binary_name = binary
        self._binary: str | None = None
        self._voices: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise ``ModelMissingError`` when the ``flite`` program is not installed."""
        self._find_binary()

    def _find_binary(self) -> str:
        found = shutil.which(self._binary_name)
        if found is None:
            raise ModelMissingError(f"the {self._binary_name!r} program is not on PATH; {_INSTALL_HINT}")
        return found

    def available_voices(self) -> list[str]:
        """Names of the voices the installed ``flite`` knows (``flite -lv``)."""
        self.load()
        return list(self._voices)

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        """The voices built into the ``flite`` on PATH (none when it is not installed)."""
        binary = shutil.which("flite")
        if binary is None:
            log.warning("flite is configured but not installed; %s", _INSTALL_HINT)
            return []
        try:
            listing = subprocess.run([binary, "-lv"], stdin=subprocess.DEVNULL, capture_output=True,
                                     timeout=_LIST_TIMEOUT, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("cannot list flite's voices: %s", e)
            return []
        names = _parse_voice_list(listing.stdout)
        default = settings.tts.voice if settings.tts.voice in names else DEFAULT_VOICE
        return [VoiceInfo(name, cls.name, ("en",), default=name == default) for name in names]

    def voice_id(self, voice: str | None) -> str:
        if voice is not None:
            return voice
        return self.settings.tts.voice if self.settings.tts.voice in self._voices else DEFAULT_VOICE

    def _load(self) -> None:
        binary = self._find_binary()
        listing = self._run([binary, "-lv"], cwd=None)
        voices = _parse_voice_list(listing.stdout)
        if not voices:
            raise PermanentError(f"`{binary} -lv` lists no voices", code="backend_unavailable")
        self._binary, self._voices = binary, voices
        log.info("flite at %s with voices %s", binary, ", ".join(voices))

    def _unload(self) -> None:
        self._binary, self._voices = None, ()

    def _voice(self, voice: str | None) -> str:
        if voice is None:
            # settings.tts.voice names a Piper voice by default; use it only if flite has it.
            configured = self.settings.tts.voice
            return configured if configured in self._voices else DEFAULT_VOICE
        if voice not in self._voices:
            raise PermanentError(
                f"unknown voice {voice!r}; available flite voices: {', '.join(self._voices)}",
                code="unknown_voice",
            )
        return voice

    def _run(self, args: list[str], cwd: Path | None) -> subprocess.CompletedProcess[bytes]:
        try:
            result = subprocess.run(
                args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout_seconds
            )
        except subprocess.TimeoutExpired as e:
            raise StageTimeout(f"flite did not finish within {self.timeout_seconds:g} s") from e
        except OSError as e:
            raise PermanentError(f"cannot run flite: {e}", code="backend_unavailable") from e
        if result.returncode != 0:
            detail = result.stderr.decode("utf-8", "replace").strip()[-500:]
            raise PermanentError(f"flite exited with status {result.returncode}: {detail}", code="tts_failed")
        return result

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        if not text or not text.strip():
            raise PermanentError("there is no text to speak", code="empty_text")
        binary = self._binary
        assert binary is not None, "load() runs before _synthesize()"
        name = self._voice(voice)
        if language and not language.lower().startswith("en"):
            # Flite's voices are English; like Piper, the voice decides the language.
            log.warning("flite speaks English, text is tagged %s", language)
        with tempfile.TemporaryDirectory(prefix="talkfarm-flite-") as tmp:
            folder = Path(tmp)
            text_file, wav_file = folder / "text.txt", folder / "speech.wav"
            # A file, not -t: text that starts with "-" cannot be read as an option.
            text_file.write_text(text.strip() + "\n", encoding="utf-8")
            result = self._run([binary, "-voice", name, "-psdur", "-f", str(text_file), "-o", str(wav_file)],
                               cwd=folder)
            if not wav_file.is_file():
                raise PermanentError("flite wrote no audio file", code="tts_failed")
            samples, rate = read_wav(wav_file)
        if samples.size == 0:
            raise PermanentError(f"nothing speakable in the text ({len(text)} characters)", code="empty_text")
        timings = _segment_timings(result.stdout.decode("utf-8", "replace"), len(samples) / rate)
        return Speech(samples, rate, timings, timings_from_model=bool(timings))


def _parse_voice_list(output: bytes) -> tuple[str, ...]:
    # "Voices available: kal awb_time kal16 awb rms slt "
    _, _, names = output.decode("utf-8", "replace").partition(":")
    return tuple(names.split())


def _segment_timings(listing: str, seconds: float) -> tuple[Timing, ...]:
    """IPA phoneme timings from ``-psdur`` output: one line per utterance of ``phone:end_time`` items.

    Each utterance's times start at zero; utterances follow one another in the audio.
    """
    timings: list[Timing] = []
    offset = 0.0
    for line in listing.splitlines():
        items = [item.rpartition(":") for item in line.split()]
        try:
            segments = [(phone, float(end)) for phone, sep, end in items if sep]
        except ValueError:
            continue  # not a segment line
        start = 0.0
        for phone, end in segments:
            if phone != "pau" and end > start:
                timings.append(Timing(offset + start, offset + end, _ARPABET_IPA.get(phone, phone), "phoneme"))
            start = max(start, end)
        offset += start
    if not timings or offset <= 0:
        return ()
    # flite's segment times and its waveform differ by a few samples; scale onto the audio.
    scale = seconds / offset
    return tuple(Timing(t.start * scale, t.end * scale, t.label, t.kind) for t in timings)
