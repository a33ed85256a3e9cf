"""Turn an original Wav2Lip checkpoint into the file the ``wav2lip`` backend loads.

    python -m workers.animation.wav2lip.convert wav2lip_gan.pth --output ~/.cache/talkfarm/models/wav2lip/wav2lip.pt2
    python -m workers.animation.wav2lip.convert wav2lip_gan.pth --output .../wav2lip.pt
    python -m workers.animation.wav2lip.convert wav2lip_gan.pth --output .../wav2lip.onnx

The original repository saves ``{"state_dict": ..., "optimizer": ...}`` with the
generator's parameters, often prefixed ``module.`` (trained under DataParallel).
Those load into ``reference_net.Wav2Lip``, which keeps the original module names;
the network is then exported with ``torch.export`` (``.pt2``: the GPU's fastest, as
it can be compiled), traced to TorchScript (``.pt``) or exported to ONNX (``.onnx``),
by the output's suffix. Only tensors are read from the checkpoint
(``torch.load(weights_only=True)``), so a checkpoint cannot run code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from workers.animation.wav2lip.reference_net import Wav2Lip, export_onnx, export_program, export_torchscript


def load_checkpoint(path: Path) -> Wav2Lip:
    """The Wav2Lip generator with the checkpoint's weights, in eval mode.

    Raises ``ValueError`` when the file holds no Wav2Lip generator state dict.
    """
    try:
        checkpoint: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path} cannot be read as a PyTorch checkpoint: {e}") from e
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = Wav2Lip()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a Wav2Lip generator checkpoint: {e}") from e
    return model.eval()


def convert(checkpoint: Path, output: Path) -> Path:
    """Load ``checkpoint`` and write it to ``output`` (``.pt2``: torch.export, ``.onnx``, else TorchScript)."""
    model = load_checkpoint(checkpoint)
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix.lower()
    if suffix == ".onnx":
        return export_onnx(model, output, Wav2Lip.face_size)
    if suffix == ".pt2":
        return export_program(model, output, Wav2Lip.face_size)
    return export_torchscript(model, output, Wav2Lip.face_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.animation.wav2lip.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="the original Wav2Lip .pth checkpoint")
    parser.add_argument("--output", type=Path, required=True,
                        help="the .pt2 (torch.export), .pt (TorchScript) or .onnx file to write")
    args = parser.parse_args(argv)
    try:
        written = convert(args.checkpoint, args.output)
    except (ValueError, OSError) as e:
        print(f"convert: {e}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
