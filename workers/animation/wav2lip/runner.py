"""Load an operator-supplied Wav2Lip network (TorchScript or ONNX) and run batches through it.

The file format is told by the suffix: ``.onnx`` runs on ONNX Runtime (the CUDA
provider when the installed build has it, the CPU provider otherwise); ``.pt``,
``.pth``, ``.ts``, ``.jit`` or ``.torchscript`` is a TorchScript archive run by torch
(on CUDA when torch sees a GPU, on the CPU otherwise). Both are called as
``model(mel, face)`` with Wav2Lip's shapes (see ``reference_net``).

The face size S comes from the model: an ONNX file's ``face`` input shape; for
TorchScript the ``talkfarm.json`` entry in the archive (written by ``convert`` and
``reference_net``), a ``face_size`` attribute, or else the first of the usual sizes
that the network accepts. Loading ends with one forward pass that checks the output
shape and range, so a file that is no network of the contract fails at worker start
with ``ModelMissingError`` rather than in the first job.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from contracts.errors import ModelMissingError, PermanentError, TransientError

log = logging.getLogger(__name__)

ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
METADATA_NAME = "talkfarm.json"
# Tried in order when a TorchScript file does not say its face size (Wav2Lip is 96).
PROBE_SIZES = (96, 128, 192, 256, 288, 384)
DEVICES = ("auto", "cuda", "cpu")
HOW_TO_GET = (
    "convert an original Wav2Lip checkpoint with `python -m workers.animation.wav2lip.convert CHECKPOINT.pth "
    "--output {path}`, or export another network of the contract to TorchScript (.pt) or ONNX (.onnx) "
    "(no package ships Wav2Lip weights)"
)


def _missing(message: str, path: Path) -> ModelMissingError:
    target = path / "wav2lip.pt" if path.suffix == "" else path
    return ModelMissingError(f"{message}; {HOW_TO_GET.format(path=target)}")


def resolve_model_path(model_dir: Path, setting: str) -> Path:
    """The network file that ``setting`` names: a file, or a folder holding exactly one.

    A relative ``setting`` is taken under ``model_dir``. Raises ``ModelMissingError``.
    """
    path = Path(setting).expanduser()
    if not path.is_absolute():
        path = model_dir / path
    suffixes = ONNX_SUFFIXES + TORCHSCRIPT_SUFFIXES
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not found:
            raise _missing(f"no Wav2Lip network (*.onnx, *.pt) in {path}", path)
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ModelMissingError(
                f"{path} holds several networks ({names}); name one with TALKFARM_ANIMATION__WAV2LIP__MODEL"
            )
        path = found[0]
    if not path.is_file():
        raise _missing(f"the Wav2Lip network {path} does not exist", path)
    if path.suffix.lower() not in suffixes:
        raise ModelMissingError(
            f"{path} is not a TorchScript (.pt) or ONNX (.onnx) file; export the network to one of them"
        )
    if path.stat().st_size == 0:
        raise _missing(f"the Wav2Lip network {path} is empty", path)
    return path


def check_model_file(path: Path) -> None:
    """Cheap checks before a worker forks: the runtime is installed and the file looks right."""
    onnx = path.suffix.lower() in ONNX_SUFFIXES
    module = "onnxruntime" if onnx else "torch"
    if importlib.util.find_spec(module) is None:
        raise ModelMissingError(f"running {path.name} needs {module}; install `talkfarm[wav2lip]`")
    if not onnx and not zipfile.is_zipfile(path):
        raise ModelMissingError(f"{path} is not a TorchScript archive (torch.jit.save writes a zip file)")


class LipSyncModel(ABC):
    """A loaded network of the Wav2Lip contract; ``infer`` is called from one thread at a time."""

    face_size: int
    device: str  # e.g. "cuda:0 (torch)", "CPUExecutionProvider (onnxruntime)"

    @abstractmethod
    def _run(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray: ...

    def infer(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        """``mel`` (B, 1, 80, 16) and ``face`` (B, 6, S, S) float32 → (B, 3, S, S) float32 in [0, 1]."""
        if mel.ndim != 4 or mel.shape[1:] != (1, 80, 16):
            raise ValueError(f"mel windows must be (B, 1, 80, 16), got {mel.shape}")
        if face.shape[1:] != (6, self.face_size, self.face_size) or face.shape[0] != mel.shape[0]:
            raise ValueError(f"faces must be ({mel.shape[0]}, 6, {self.face_size}, {self.face_size}), got {face.shape}")
        # Writable C-contiguous float32 (torch refuses read-only arrays, e.g. broadcast views).
        mel = np.require(mel, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        face = np.require(face, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        out = self._run(mel, face)
        result: np.ndarray = np.clip(out, 0.0, 1.0)
        return result

    def close(self) -> None:
        """Free the network (and its device memory)."""

    def _validate(self, path: Path) -> None:
        """One forward pass on a batch of 2: the output must be (2, 3, S, S) and finite."""
        mel = np.zeros((2, 1, 80, 16), np.float32)
        face = np.full((2, 6, self.face_size, self.face_size), 0.5, np.float32)
        try:
            out = self._run(mel, face)
        except Exception as e:
            raise ModelMissingError(f"{path} fails on Wav2Lip inputs: {type(e).__name__}: {e}") from e
        if out.shape != (2, 3, self.face_size, self.face_size) or not np.isfinite(out).all():
            raise ModelMissingError(
                f"{path} is not a network of the Wav2Lip contract: output {out.shape}, "
                f"expected (2, 3, {self.face_size}, {self.face_size}) of finite values"
            )


class TorchScriptModel(LipSyncModel):
    def __init__(self, path: Path, device: str = "auto", face_size: int = 0, half: bool = False) -> None:
        import torch

        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise PermanentError("the wav2lip backend is set to CUDA but torch sees no GPU", code="no_gpu")
        self._device = torch.device(device)
        self._half = half and self._device.type == "cuda"
        extra = {METADATA_NAME: ""}
        try:
            module = torch.jit.load(str(path), map_location=self._device, _extra_files=extra)
        except (RuntimeError, ValueError) as e:
            raise ModelMissingError(
                f"{path} cannot be loaded as TorchScript ({str(e).splitlines()[0]}); a checkpoint must be "
                f"converted first: {HOW_TO_GET.format(path=path.with_name(path.stem + '-torchscript.pt'))}"
            ) from e
        module.eval()
        if self._half:
            module.half()
        self._module = module
        self.device = f"{self._device} (torch{', float16' if self._half else ''})"
        self.face_size = face_size or self._declared_size(extra[METADATA_NAME]) or self._probe(path)
        self._validate(path)

    def _declared_size(self, metadata: str | bytes) -> int:
        if metadata:
            try:
                return int(json.loads(metadata).get("face_size", 0))
            except (ValueError, AttributeError):
                log.warning("ignoring unreadable %s in the TorchScript archive", METADATA_NAME)
        size = getattr(self._module, "face_size", 0)
        return size if isinstance(size, int) else 0

    def _probe(self, path: Path) -> int:
        mel = np.zeros((1, 1, 80, 16), np.float32)
        for size in PROBE_SIZES:
            try:
                out = self._run(mel, np.zeros((1, 6, size, size), np.float32))
            except Exception:
                continue
            if out.shape == (1, 3, size, size):
                log.info("%s takes %dx%d faces (found by probing)", path.name, size, size)
                return size
        raise ModelMissingError(
            f"cannot tell the face size of {path}: it accepts none of {PROBE_SIZES}; "
            "set TALKFARM_ANIMATION__WAV2LIP__FACE_SIZE"
        )

    def _run(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        torch = self._torch
        dtype = torch.float16 if self._half else torch.float32
        try:
            with torch.inference_mode():
                mel_t = torch.from_numpy(mel).to(self._device, dtype, non_blocking=True)
                face_t = torch.from_numpy(face).to(self._device, dtype, non_blocking=True)
                out = self._module(mel_t, face_t)
                result: np.ndarray = out.float().cpu().numpy()
        except torch.OutOfMemoryError as e:
            raise TransientError(f"the GPU ran out of memory on a batch of {len(mel)} frames") from e
        return result

    def close(self) -> None:
        self._module = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()


class OnnxModel(LipSyncModel):
    def __init__(self, path: Path, device: str = "auto", face_size: int = 0, threads: int = 0) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise PermanentError(
                "the wav2lip backend is set to CUDA but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu)", code="no_gpu",
            )
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise ModelMissingError(f"{path} cannot be loaded by ONNX Runtime: {e}") from e
        self.device = f"{self._session.get_providers()[0]} (onnxruntime)"
        self._mel_name, self._face_name, shape = self._inputs(path)
        self._output = self._session.get_outputs()[0].name
        declared = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else 0
        metadata = self._session.get_modelmeta().custom_metadata_map.get("face_size", "0")
        self.face_size = face_size or declared or int(metadata or 0) or PROBE_SIZES[0]
        self._validate(path)

    def _inputs(self, path: Path) -> tuple[str, str, list[Any]]:
        """Names of the mel and face inputs, told apart by their channel count (1 and 6)."""
        inputs = self._session.get_inputs()
        if len(inputs) != 2:
            raise ModelMissingError(f"{path} has {len(inputs)} inputs; a Wav2Lip network has two (mel, face)")
        channels = [i.shape[1] if len(i.shape) == 4 else None for i in inputs]
        if channels == [6, 1]:
            return inputs[1].name, inputs[0].name, list(inputs[0].shape)
        return inputs[0].name, inputs[1].name, list(inputs[1].shape)  # Wav2Lip's order: (mel, face)

    def _run(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([self._output], {self._mel_name: mel, self._face_name: face})
        result: np.ndarray = np.asarray(out, dtype=np.float32)
        return result

    def close(self) -> None:
        self._session = None


def open_model(path: Path, device: str = "auto", face_size: int = 0, half: bool = False,
               threads: int = 0) -> LipSyncModel:
    """Load ``path`` with the runtime its suffix names and check it with one forward pass.

    ``device`` is ``auto`` (CUDA when present), ``cuda`` or ``cpu``; ``face_size`` 0 reads it
    from the model; ``half`` runs TorchScript in float16 on CUDA; ``threads`` caps ONNX
    Runtime's CPU threads (0: its default). Raises ``ModelMissingError`` for a missing,
    unreadable or wrong file and ``PermanentError(code="no_gpu")`` when CUDA is demanded
    but absent.
    """
    if device not in DEVICES:
        raise PermanentError(f"unknown device {device!r} for wav2lip; use one of {', '.join(DEVICES)}",
                             code="bad_settings")
    check_model_file(path)
    model: LipSyncModel
    if path.suffix.lower() in ONNX_SUFFIXES:
        model = OnnxModel(path, device, face_size, threads)
    else:
        model = TorchScriptModel(path, device, face_size, half)
    log.info("loaded %s on %s, faces %dx%d", path, model.device, model.face_size, model.face_size)
    return model
