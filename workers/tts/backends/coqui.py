"""Coqui TTS (``coqui-tts``): a model folder with ``config.json`` and a checkpoint, on the GPU when present.

Install with ``pip install talkfarm[coqui]`` after torch (never ``coqui-tts[cpu]``,
which pulls another torch). coqui-tts imports torchaudio, and PyPI's torchaudio
is built against one torch release only: with this project's CPU torch 2.13
there is no matching torchaudio, so this backend runs where torch and torchaudio
match (the GPU image). It is imported only inside ``_load``.

``tts.coqui.model`` names the folder (under ``<model_dir>/coqui/`` or an
absolute path), laid out as Coqui releases models:

- VITS, YourTTS, Tacotron2, Glow-TTS, ...: ``config.json`` and a checkpoint
  (``model.pth``, ``model_file.pth``, ``best_model.pth`` or ``checkpoint.pth``),
  with ``speakers.pth``/``speaker_ids.json`` and ``language_ids.json`` for
  multi-speaker or multilingual models; a spectrogram model may bring its vocoder
  in a ``vocoder/`` subfolder (``config.json`` + checkpoint), else Griffin-Lim;
- XTTS: ``config.json``, ``model.pth``, ``vocab.json`` (and ``speakers_xtts.pth``);
  the whole folder is the checkpoint.

Paths inside ``config.json`` written on the training machine are pointed at the
files of the same name in the folder (through a private copy of the config).
Voices: each speaker of a multi-speaker model is a voice; a single-speaker
model's voice is the folder's name. Coqui gives no timings, so the stage
estimates word timings.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from contracts.text.sentences import primary_language
from workers.tts.base import Speech, TTSBackend, TTSCapabilities, VoiceInfo, registry

log = logging.getLogger(__name__)

MODEL_FOLDER = "coqui"
CHECKPOINT_NAMES = ("model.pth", "model_file.pth", "best_model.pth", "checkpoint.pth")
# Config entries that name files next to the checkpoint.
_PATH_KEYS = ("speakers_file", "language_ids_file", "d_vector_file", "speaker_encoder_model_path",
              "speaker_encoder_config_path")
_INSTALL_HINT = "run `pip install talkfarm[coqui]` (after torch; torchaudio must match the installed torch)"


def model_folder(settings: Settings) -> Path | None:
    """The configured Coqui model folder, or None when ``tts.coqui.model`` is empty."""
    name = settings.tts.coqui.model
    if not name:
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else settings.model_dir / MODEL_FOLDER / name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_xtts(config: dict[str, Any]) -> bool:
    return str(config.get("model", "")).lower() == "xtts"


def find_checkpoint(folder: Path, config: dict[str, Any]) -> Path | None:
    """The checkpoint to load: the folder itself for XTTS, else the first known checkpoint file."""
    if _is_xtts(config):
        return folder if (folder / "model.pth").is_file() else None
    for name in CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _listed_speakers(folder: Path, config: dict[str, Any]) -> list[str]:
    """Speaker names readable without torch: JSON speaker maps and the config's own list."""
    names: list[str] = [str(name) for name in config.get("speakers") or []]
    for candidate in ("speaker_ids.json", "speakers.json"):
        data = _read_json(folder / candidate)
        if isinstance(data, dict):
            names.extend(str(key) for key in data)
    return list(dict.fromkeys(names))


def _listed_languages(folder: Path, config: dict[str, Any], settings: Settings) -> tuple[str, ...]:
    languages: list[str] = [str(x) for x in config.get("languages") or []]
    ids = _read_json(folder / "language_ids.json")
    if isinstance(ids, dict):
        languages.extend(str(key) for key in ids)
    if not languages:
        fallback = settings.tts.coqui.language or config.get("phoneme_language") or "en"
        languages.append(str(fallback))
    return tuple(dict.fromkeys(p for p in (primary_language(x) for x in languages) if p))


@registry.register("coqui")
class CoquiTTS(TTSBackend):
    """Speaks with a Coqui model folder; speakers of a multi-speaker model are its voices."""

    capabilities = TTSCapabilities(languages=("en",), streaming=False, gpu=True, phoneme_timings=False)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._synth: Any = None
        self._speakers: list[str] = []
        self._languages: list[str] = []
        self._config_dir: Path | None = None
        self._lock = threading.Lock()  # one synthesis at a time on a model

    # -- cheap: settings and files only ------------------------------------------------------

    @classmethod
    def list_voices(cls, settings: Settings) -> list[VoiceInfo]:
        folder = model_folder(settings)
        config = _read_json(folder / "config.json") if folder is not None else None
        if folder is None or not isinstance(config, dict):
            return []
        languages = _listed_languages(folder, config, settings)
        default = settings.tts.coqui.speaker or folder.name
        names = [folder.name, *_listed_speakers(folder, config)]
        if settings.tts.coqui.speaker:
            names.append(settings.tts.coqui.speaker)
        return [VoiceInfo(name, cls.name, languages, default=name == default) for name in dict.fromkeys(names)]

    def check(self) -> None:
        folder = model_folder(self.settings)
        if folder is None:
            raise ModelMissingError("no Coqui model is configured; set TALKFARM_TTS__COQUI__MODEL to a model folder")
        config = _read_json(folder / "config.json")
        if not isinstance(config, dict):
            raise ModelMissingError(f"{folder / 'config.json'} is missing or not JSON; put a Coqui model folder "
                                    f"(config.json + checkpoint) there")
        if find_checkpoint(folder, config) is None:
            raise ModelMissingError(f"no checkpoint in {folder} (looked for {', '.join(CHECKPOINT_NAMES)})")

    def voice_id(self, voice: str | None) -> str:
        folder = model_folder(self.settings)
        return voice or self.settings.tts.coqui.speaker or (folder.name if folder else "")

    def model_id(self, voice: str | None) -> str:
        folder = model_folder(self.settings)
        if folder is None:
            return ""
        parts = []
        for path in (folder / "config.json", *(folder / name for name in CHECKPOINT_NAMES)):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
        return ";".join(parts)

    # -- the model ---------------------------------------------------------------------------

    def _load(self) -> None:
        self.check()
        folder = model_folder(self.settings)
        assert folder is not None
        try:
            import torch
            from TTS.utils.synthesizer import Synthesizer
        except ImportError as e:  # torchaudio that does not match torch fails as ImportError/OSError
            raise PermanentError(f"coqui-tts cannot be imported ({e}); {_INSTALL_HINT}",
                                 code="backend_unavailable") from e
        except OSError as e:
            raise PermanentError(f"coqui-tts cannot be imported ({e}); {_INSTALL_HINT}",
                                 code="backend_unavailable") from e
        device = self.settings.tts.coqui.device
        use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
        config = _read_json(folder / "config.json")
        checkpoint = find_checkpoint(folder, config)
        config_path = self._local_config(folder, config)
        vocoder = self._vocoder(folder / "vocoder")
        try:
            synth = Synthesizer(tts_checkpoint=checkpoint, tts_config_path=config_path,
                                vocoder_checkpoint=vocoder[0] if vocoder else None,
                                vocoder_config=vocoder[1] if vocoder else None, use_cuda=use_cuda)
        except Exception as e:  # torch and Coqui raise RuntimeError, KeyError, ValueError, ...
            raise PermanentError(f"cannot load the Coqui model in {folder}: {type(e).__name__}: {e}",
                                 code="voice_load_failed") from e
        model = synth.tts_model
        speaker_manager = getattr(model, "speaker_manager", None)
        language_manager = getattr(model, "language_manager", None)
        self._speakers = list(getattr(speaker_manager, "speaker_names", None) or [])
        self._languages = list(getattr(language_manager, "language_names", None) or [])
        self._synth = synth
        log.info("loaded Coqui %s from %s on %s (%d speakers, languages %s, %d Hz)", config.get("model"), folder,
                 "cuda" if use_cuda else "cpu", len(self._speakers), self._languages, synth.output_sample_rate)

    def _unload(self) -> None:
        self._synth = None
        if self._config_dir is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None

    def _local_config(self, folder: Path, config: dict[str, Any]) -> Path:
        """``config.json``, or a private copy whose file paths point into ``folder`` where they must."""
        changed = False

        def fix(section: dict[str, Any]) -> None:
            nonlocal changed
            for key in _PATH_KEYS:
                value = section.get(key)
                if isinstance(value, str) and value and not Path(value).is_file():
                    local = folder / Path(value).name
                    if local.is_file():
                        section[key] = str(local)
                        changed = True

        fix(config)
        if isinstance(config.get("model_args"), dict):
            fix(config["model_args"])
        if not changed:
            return folder / "config.json"
        self._config_dir = Path(tempfile.mkdtemp(prefix="talkfarm-coqui-"))
        target = self._config_dir / "config.json"
        target.write_text(json.dumps(config), encoding="utf-8")
        return target

    @staticmethod
    def _vocoder(folder: Path) -> tuple[Path, Path] | None:
        config = folder / "config.json"
        checkpoint = next((folder / n for n in CHECKPOINT_NAMES if (folder / n).is_file()), None)
        return (checkpoint, config) if config.is_file() and checkpoint is not None else None

    def _speaker(self, voice: str | None) -> str | None:
        folder = model_folder(self.settings)
        default = self.settings.tts.coqui.speaker or None
        if voice is None or voice == (folder.name if folder else None):
            if default is None and self._speakers:
                return self._speakers[0]
            return default
        if voice in self._speakers or voice == default:
            return voice
        available = ", ".join([folder.name if folder else "", *self._speakers]).strip(", ")
        raise PermanentError(f"unknown voice {voice!r}; available Coqui voices: {available}", code="unknown_voice")

    def _language(self, language: str | None) -> str | None:
        if not self._languages:
            return None
        wanted = [language.lower()] if language else []
        if self.settings.tts.coqui.language:
            wanted.append(self.settings.tts.coqui.language.lower())
        for tag in wanted:
            for name in self._languages:
                if name.lower() == tag or primary_language(name) == primary_language(tag):
                    return name
        return self._languages[0]

    def _synthesize(self, text: str, voice: str | None, language: str | None) -> Speech:
        if not text or not text.strip():
            raise PermanentError("there is no text to speak", code="empty_text")
        synth = self._synth
        assert synth is not None, "load() runs before _synthesize()"
        speaker = self._speaker(voice)
        speaker_wav = self.settings.tts.coqui.speaker_wav or None
        with self._lock:
            wav = synth.tts(text.strip(), speaker_name=speaker, language_name=self._language(language),
                            speaker_wav=speaker_wav, split_sentences=False)
        samples = np.asarray(wav, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            raise PermanentError(f"nothing speakable in the text ({len(text)} characters)", code="empty_text")
        peak = float(np.max(np.abs(samples)))
        if not np.isfinite(peak):
            raise PermanentError("the Coqui model produced invalid samples", code="tts_failed")
        if peak > 1.0:
            samples = samples / peak
        return Speech(samples, int(synth.output_sample_rate))
