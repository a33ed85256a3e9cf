"""Networks of the Wav2Lip contract for tests and benchmarks: architectures with random weights.

THESE ARE NOT TRAINED MODELS. No package carries Wav2Lip weights, so the farm's
tests and ``bench/wav2lip.py`` build these networks, export them to the formats
the ``wav2lip`` backend loads and run the whole path (loading, batching,
paste-back, encoding) on them. Their output is noise shaped like a face crop.

The contract, as in the original Wav2Lip (Prajwal et al., 2020)::

    forward(mel, face) -> out
    mel:  (B, 1, 80, 16)  float32, one 16-step mel window per video frame, in [-4, 4]
    face: (B, 6, S, S)    float32 in [0, 1], BGR; channels 0-2 the frame with its lower
                          half zeroed, channels 3-5 the reference frame
    out:  (B, 3, S, S)    float32 in [0, 1], BGR: the face crop with the lower face regenerated

``Wav2Lip`` is the original generator (face encoder, audio encoder, decoder with
skip connections; about 36M parameters, S = 96), with the original module names, so
that a state dict of the original checkpoint loads into it (see ``convert``).
``TinyWav2Lip`` is a small encoder-decoder of the same contract that CI can run in
milliseconds; like the original it accepts only its own face size.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

MEL_SHAPE = (1, 80, 16)
# Written into TorchScript archives (``_extra_files``) and ONNX metadata by ``export_*``.
METADATA_NAME = "talkfarm.json"


class Conv2d(nn.Module):
    """Conv + BatchNorm + ReLU, with an optional residual connection (Wav2Lip's ``Conv2d``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    """Transposed conv + BatchNorm + ReLU (Wav2Lip's ``Conv2dTranspose``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int,
                 output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(channels: int) -> Conv2d:
    return Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, residual=True)


class Wav2Lip(nn.Module):
    """The original Wav2Lip generator for 96x96 faces, randomly initialised."""

    face_size = 96

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, 16, kernel_size=7, stride=1, padding=3)),  # 96x96
            nn.Sequential(Conv2d(16, 32, kernel_size=3, stride=2, padding=1), _res(32), _res(32)),  # 48x48
            nn.Sequential(Conv2d(32, 64, kernel_size=3, stride=2, padding=1), _res(64), _res(64), _res(64)),  # 24
            nn.Sequential(Conv2d(64, 128, kernel_size=3, stride=2, padding=1), _res(128), _res(128)),  # 12x12
            nn.Sequential(Conv2d(128, 256, kernel_size=3, stride=2, padding=1), _res(256), _res(256)),  # 6x6
            nn.Sequential(Conv2d(256, 512, kernel_size=3, stride=2, padding=1), _res(512)),  # 3x3
            nn.Sequential(Conv2d(512, 512, kernel_size=3, stride=1, padding=0),  # 1x1
                          Conv2d(512, 512, kernel_size=1, stride=1, padding=0)),
        ])
        self.audio_encoder = nn.Sequential(
            Conv2d(1, 32, kernel_size=3, stride=1, padding=1), _res(32), _res(32),
            Conv2d(32, 64, kernel_size=3, stride=(3, 1), padding=1), _res(64), _res(64),
            Conv2d(64, 128, kernel_size=3, stride=3, padding=1), _res(128), _res(128),
            Conv2d(128, 256, kernel_size=3, stride=(3, 2), padding=1), _res(256),
            Conv2d(256, 512, kernel_size=3, stride=1, padding=0),
            Conv2d(512, 512, kernel_size=1, stride=1, padding=0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(512, 512, kernel_size=1, stride=1, padding=0)),
            nn.Sequential(Conv2dTranspose(1024, 512, kernel_size=3, stride=1, padding=0), _res(512)),  # 3x3
            nn.Sequential(Conv2dTranspose(1024, 512, kernel_size=3, stride=2, padding=1, output_padding=1),
                          _res(512), _res(512)),  # 6x6
            nn.Sequential(Conv2dTranspose(768, 384, kernel_size=3, stride=2, padding=1, output_padding=1),
                          _res(384), _res(384)),  # 12x12
            nn.Sequential(Conv2dTranspose(512, 256, kernel_size=3, stride=2, padding=1, output_padding=1),
                          _res(256), _res(256)),  # 24x24
            nn.Sequential(Conv2dTranspose(320, 128, kernel_size=3, stride=2, padding=1, output_padding=1),
                          _res(128), _res(128)),  # 48x48
            nn.Sequential(Conv2dTranspose(160, 64, kernel_size=3, stride=2, padding=1, output_padding=1),
                          _res(64), _res(64)),  # 96x96
        ])
        self.output_block = nn.Sequential(
            Conv2d(80, 32, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        x = self.audio_encoder(mel)  # (B, 512, 1, 1)
        feats = []
        y = face
        for block in self.face_encoder_blocks:
            y = block(y)
            feats.append(y)
        for block, skip in zip(self.face_decoder_blocks, reversed(feats)):
            x = torch.cat((block(x), skip), dim=1)
        out: torch.Tensor = self.output_block(x)
        return out


class TinyWav2Lip(nn.Module):
    """A small conv encoder-decoder of the Wav2Lip contract (a few thousand parameters).

    The face is encoded to 1/4 size, the mel window to a vector that is added to every
    position, and a learned per-position bias ties the network to ``face_size`` as the
    original's 1x1 bottleneck does. ``face_size`` must be a multiple of 4.
    """

    def __init__(self, face_size: int = 96, width: int = 8) -> None:
        super().__init__()
        if face_size % 4 or face_size < 8:
            raise ValueError(f"face_size must be a multiple of 4 and at least 8, got {face_size}")
        self.face_size = face_size
        self.face_encoder = nn.Sequential(
            nn.Conv2d(6, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.audio_encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=(4, 2), padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 2 * width),
        )
        self.position = nn.Parameter(0.1 * torch.randn(1, 2 * width, face_size // 4, face_size // 4))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        audio = self.audio_encoder(mel)[:, :, None, None]
        out: torch.Tensor = self.decoder(self.face_encoder(face) + audio + self.position)
        return out


def example_inputs(face_size: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ``(mel, face)`` inputs of the contract, for tracing and checks."""
    generator = torch.Generator().manual_seed(seed)
    mel = torch.rand((batch, *MEL_SHAPE), generator=generator) * 8 - 4
    face = torch.rand((batch, 6, face_size, face_size), generator=generator)
    return mel, face


def export_torchscript(model: nn.Module, path: Path, face_size: int, metadata: bool = True) -> Path:
    """Trace ``model`` (in eval mode) and save it as a TorchScript archive.

    With ``metadata`` the face size is stored in the archive (``talkfarm.json``); without
    it the backend finds the size by probing, as for a file traced elsewhere.
    """
    model = model.eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, example_inputs(face_size))
    extra = {METADATA_NAME: json.dumps({"face_size": face_size})} if metadata else {}
    torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def export_program(model: nn.Module, path: Path, face_size: int) -> Path:
    """Export ``model`` (in eval mode) with ``torch.export`` (any batch size) and save it as ``.pt2``.

    The program records its input shapes, so the backend reads the face size from it; it
    loads as an FX graph, whose batch norms the backend folds and which it can compile.
    """
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(model, example_inputs(face_size),
                                      dynamic_shapes={"mel": {0: batch}, "face": {0: batch}})
    torch.export.save(program, str(path))
    return path


def export_onnx(model: nn.Module, path: Path, face_size: int, opset: int = 17) -> Path:
    """Export ``model`` (in eval mode) to ONNX with a dynamic batch axis and a fixed face size.

    Inputs are named ``mel`` and ``face``, the output ``out``. Uses the TorchScript-based
    exporter, which needs only the ``onnx`` package.
    """
    model = model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model, example_inputs(face_size), str(path), dynamo=False, opset_version=opset,
            input_names=["mel", "face"], output_names=["out"],
            dynamic_axes={"mel": {0: "batch"}, "face": {0: "batch"}, "out": {0: "batch"}},
        )
    return path


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
