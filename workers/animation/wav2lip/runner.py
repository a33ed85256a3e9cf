"""Load an operator-supplied Wav2Lip network (torch.export, TorchScript or ONNX) and run batches through it.

The file format is told by the suffix: ``.onnx`` runs on ONNX Runtime (the CUDA
provider when the installed build has it, the CPU provider otherwise); ``.pt2`` is a
``torch.export`` program and ``.pt``, ``.pth``, ``.ts``, ``.jit`` or ``.torchscript`` a
TorchScript archive, both run by torch (on CUDA when torch sees a GPU, on the CPU
otherwise) after ``network.optimize`` (batch norm folded, float16 and channels_last on
CUDA; a ``.pt2`` program can also be compiled). All are called as ``model(mel, face)``
with Wav2Lip's shapes (see ``reference_net``).

The face size S comes from the model: an ONNX file's ``face`` input shape; a ``.pt2``
program's recorded face input shape; for TorchScript the ``talkfarm.json`` entry in the
archive (written by ``convert`` and ``reference_net``), a ``face_size`` attribute, or
else the first of the usual sizes that the network accepts. Loading ends with one forward pass that checks the output
shape and range, so a file that is no network of the contract fails at worker start
with ``ModelMissingError`` rather than in the first job.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import zipfile
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from contracts.errors import ModelMissingError, PermanentError, TransientError

if TYPE_CHECKING:
    from workers.animation.wav2lip.network import CompileMode
else:
    CompileMode = str

log = logging.getLogger(__name__)

ONNX_SUFFIXES = (".onnx",)
EXPORTED_SUFFIXES = (".pt2",)  # torch.export programs: foldable and compilable
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
METADATA_NAME = "talkfarm.json"
# Tried in order when a TorchScript file does not say its face size (Wav2Lip is 96).
PROBE_SIZES = (96, 128, 192, 256, 288, 384)
DEVICES = ("auto", "cuda", "cpu")
HOW_TO_GET = (
    "convert an original Wav2Lip checkpoint with `python -m workers.animation.wav2lip.convert CHECKPOINT.pth "
    "--output {path}`, or export another network of the contract with torch.export (.pt2), to TorchScript (.pt) "
    "or to ONNX (.onnx) "
    "(no package ships Wav2Lip weights)"
)


def _missing(message: str, path: Path) -> ModelMissingError:
    target = path / "wav2lip.pt2" if path.suffix == "" else path
    return ModelMissingError(f"{message}; {HOW_TO_GET.format(path=target)}")


def resolve_model_path(model_dir: Path, setting: str) -> Path:
    """The network file that ``setting`` names: a file, or a folder holding exactly one.

    A relative ``setting`` is taken under ``model_dir``. Raises ``ModelMissingError``.
    """
    path = Path(setting).expanduser()
    if not path.is_absolute():
        path = model_dir / path
    suffixes = ONNX_SUFFIXES + EXPORTED_SUFFIXES + TORCHSCRIPT_SUFFIXES
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not found:
            raise _missing(f"no Wav2Lip network (*.pt2, *.pt, *.onnx) in {path}", path)
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
            f"{path} is not a torch.export (.pt2), TorchScript (.pt) or ONNX (.onnx) file; "
            "export the network to one of them"
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
        raise ModelMissingError(f"{path} is not a TorchScript or torch.export archive (both are zip files)")


class LipSyncModel(ABC):
    """A loaded network of the Wav2Lip contract; ``infer`` is called from one thread at a time."""

    face_size: int
    device: str  # e.g. "cuda:0 (torch)", "CPUExecutionProvider (onnxruntime)"

    @abstractmethod
    def _run(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray: ...

    def infer(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        """``mel`` (B, 1, 80, 16) and ``face`` (B, 6, S, S) float32 → (B, 3, S, S) floats, about [0, 1].

        The output is in the network's dtype (float16 for a half network) and is not clipped:
        the paste-back clips it. A broadcast ``face`` (``np.broadcast_to``: every frame the
        same) is uploaded once.
        """
        if mel.ndim != 4 or mel.shape[1:] != (1, 80, 16):
            raise ValueError(f"mel windows must be (B, 1, 80, 16), got {mel.shape}")
        if face.shape[1:] != (6, self.face_size, self.face_size) or face.shape[0] != mel.shape[0]:
            raise ValueError(f"faces must be ({mel.shape[0]}, 6, {self.face_size}, {self.face_size}), got {face.shape}")
        return self._run(mel, face)

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


class TorchModel(LipSyncModel):
    """A TorchScript archive or a ``torch.export`` program (``.pt2``), made fast by ``network.optimize``."""

    def __init__(self, path: Path, device: str = "auto", face_size: int = 0, half: bool = False,
                 compile: CompileMode = "off", channels_last: bool = True, buckets: Sequence[int] = ()) -> None:
        import torch

        from workers.animation.wav2lip import network

        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise PermanentError("the wav2lip backend is set to CUDA but torch sees no GPU", code="no_gpu")
        self._device = torch.device(device)
        self._face_cache: tuple[int, Any] | None = None
        self._buckets: tuple[int, ...] = ()
        self._declared = 0
        exported = path.suffix.lower() in EXPORTED_SUFFIXES
        module = self._load_exported(path) if exported else self._load_torchscript(path)
        self._module = module
        self.network = network.PreparedNetwork(module, self._device, torch.float32, False, False, 0)
        self.face_size = face_size or self._declared or self._probe(path)
        options = network.NetworkOptions(device=str(self._device), half=half, channels_last=channels_last,
                                         compile=compile)
        prepared = network.optimize(module, options)
        if prepared.compiled:
            def uncompiled() -> network.PreparedNetwork:
                return network.optimize(self._reload(path), replace(options, compile="off"))

            prepared = network.warm_up(prepared, self.face_size, buckets or (2,), fallback=uncompiled)
        self.network = prepared
        self._buckets = tuple(sorted(buckets)) if prepared.compiled else ()
        flags = [str(prepared.dtype).removeprefix("torch."), *(["channels_last"] if prepared.channels_last else []),
                 *(["compiled"] if prepared.compiled else [])]
        self.device = f"{self._device} (torch, {', '.join(flags)})"
        self._validate(path)

    def _reload(self, path: Path) -> Any:
        return self._load_exported(path) if path.suffix.lower() in EXPORTED_SUFFIXES else self._load_torchscript(path)

    def _load_exported(self, path: Path) -> Any:
        from workers.animation.wav2lip.network import load_exported

        try:
            module = load_exported(str(path), self._device)
        except Exception as e:  # torch.export raises several types for foreign or corrupt files
            raise ModelMissingError(f"{path} cannot be loaded as a torch.export program: {e}") from e
        self._declared = self._exported_size(module)
        return module

    def _load_torchscript(self, path: Path) -> Any:
        torch = self._torch
        extra = {METADATA_NAME: ""}
        try:
            module = torch.jit.load(str(path), map_location=self._device, _extra_files=extra)
        except (RuntimeError, ValueError) as e:
            raise ModelMissingError(
                f"{path} cannot be loaded as TorchScript ({str(e).splitlines()[0]}); a checkpoint must be "
                f"converted first: {HOW_TO_GET.format(path=path.with_name(path.stem + '-torchscript.pt'))}"
            ) from e
        module.eval()
        self._declared = self._declared_size(extra[METADATA_NAME], module)
        return module

    @staticmethod
    def _exported_size(module: Any) -> int:
        """S from the face input's (B, 6, S, S) shape recorded in the exported graph, 0 if absent."""
        for node in module.graph.nodes:
            value = node.meta.get("val") if node.op == "placeholder" else None
            shape: Sequence[Any] = tuple(getattr(value, "shape", ()))
            if len(shape) == 4 and shape[1] == 6 and isinstance(shape[2], int):
                return int(shape[2])
        return 0

    @staticmethod
    def _declared_size(metadata: str | bytes, module: Any) -> int:
        if metadata:
            try:
                return int(json.loads(metadata).get("face_size", 0))
            except (ValueError, AttributeError):
                log.warning("ignoring unreadable %s in the TorchScript archive", METADATA_NAME)
        size = getattr(module, "face_size", 0)
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

    def _face(self, face: np.ndarray) -> Any:
        """The face batch on the device: a broadcast face (every frame the same) is uploaded once."""
        torch, net = self._torch, self.network
        if face.strides[0] == 0:
            one = np.array(face[0], dtype=np.float32)  # a writable copy of the one face
            key = hash(one.tobytes())
            if self._face_cache is None or self._face_cache[0] != key:
                self._face_cache = (key, torch.from_numpy(one).to(net.device, net.dtype))
            return self._face_cache[1].expand(len(face), -1, -1, -1)
        face = np.require(face, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        return self._upload(face)

    def _upload(self, array: np.ndarray) -> Any:
        torch, net = self._torch, self.network
        host = torch.from_numpy(array)
        if net.device.type == "cuda":
            host = host.pin_memory()
        return host.to(net.device, non_blocking=True).to(net.dtype)

    def _run(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        torch, net = self._torch, self.network
        try:
            with torch.inference_mode():
                mel_t = self._upload(np.require(mel, np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
                face_t = self._face(face)
                rows = len(mel)
                size = next((b for b in self._buckets if b >= rows), rows)  # a compiled network's shapes
                if size > rows:
                    mel_t = torch.cat([mel_t, mel_t[:1].expand(size - rows, -1, -1, -1)])
                    face_t = torch.cat([face_t, face_t[:1].expand(size - rows, -1, -1, -1)])
                if net.channels_last:
                    mel_t = mel_t.contiguous(memory_format=torch.channels_last)
                    face_t = face_t.contiguous(memory_format=torch.channels_last)
                out = net.forward(mel_t, face_t)[:rows]
                # In the network's dtype (half the bytes in float16); the paste-back clips and converts.
                result: np.ndarray = out.contiguous().cpu().numpy()
        except torch.OutOfMemoryError as e:
            raise TransientError(f"the GPU ran out of memory on a batch of {len(mel)} frames") from e
        return result

    def close(self) -> None:
        self._module = None
        self._face_cache = None
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
        mel = np.require(mel, np.float32, ["C_CONTIGUOUS"])
        face = np.require(face, np.float32, ["C_CONTIGUOUS"])
        (out,) = self._session.run([self._output], {self._mel_name: mel, self._face_name: face})
        result: np.ndarray = np.asarray(out, dtype=np.float32)
        return result

    def close(self) -> None:
        self._session = None


def open_model(path: Path, device: str = "auto", face_size: int = 0, half: bool = False,
               threads: int = 0, *, compile: CompileMode = "off", channels_last: bool = True,
               buckets: Sequence[int] = ()) -> LipSyncModel:
    """Load ``path`` with the runtime its suffix names and check it with one forward pass.

    ``device`` is ``auto`` (CUDA when present), ``cuda`` or ``cpu``; ``face_size`` 0 reads it
    from the model; ``half`` runs a torch network in float16 on CUDA; ``threads`` caps ONNX
    Runtime's CPU threads (0: its default). ``compile`` (``.pt2`` only), ``channels_last`` and
    ``buckets`` (the batch sizes compiled at load) are ``network.optimize``'s options.
    Raises ``ModelMissingError`` for a missing, unreadable or wrong file and
    ``PermanentError(code="no_gpu")`` when CUDA is demanded but absent.
    """
    if device not in DEVICES:
        raise PermanentError(f"unknown device {device!r} for wav2lip; use one of {', '.join(DEVICES)}",
                             code="bad_settings")
    check_model_file(path)
    model: LipSyncModel
    if path.suffix.lower() in ONNX_SUFFIXES:
        model = OnnxModel(path, device, face_size, threads)
    else:
        model = TorchModel(path, device, face_size, half, compile, channels_last, buckets)
    log.info("loaded %s on %s, faces %dx%d", path, model.device, model.face_size, model.face_size)
    return model
