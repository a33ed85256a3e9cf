"""Making a torch network of the Wav2Lip contract fast: batch norm folded, channels_last, compiled or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workers.animation.wav2lip import network
from workers.animation.wav2lip.network import NetworkOptions, fold_batch_norm, optimize, warm_up
from workers.animation.wav2lip.reference_net import Conv2d, Conv2dTranspose, export_program, export_torchscript
from workers.animation.wav2lip.runner import open_model

pytestmark = pytest.mark.unit
SIZE = 32


class SmallNet(nn.Module):
    """Conv + BN, a residual block and transposed conv + BN (the original's building blocks), 32 px faces."""

    def __init__(self) -> None:
        super().__init__()
        self.face = nn.Sequential(Conv2d(6, 8, 3, 2, 1), Conv2d(8, 8, 3, 1, 1, residual=True))
        self.audio = nn.Sequential(Conv2d(1, 8, 3, (5, 1), 1), nn.AdaptiveAvgPool2d(1))
        self.up = Conv2dTranspose(8, 8, 3, 2, 1, output_padding=1)
        self.out = nn.Sequential(nn.Conv2d(8, 3, 1), nn.Sigmoid())

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return self.out(self.up(self.face(face) + self.audio(mel)))


def trained_like(net: nn.Module) -> nn.Module:
    """Batch-norm statistics away from 0 and 1, so that folding has something to fold."""
    torch.manual_seed(3)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)  # type: ignore[union-attr]
                module.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net.eval()


def inputs(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand((batch, 1, 80, 16), generator=generator) * 8 - 4,
            torch.rand((batch, 6, SIZE, SIZE), generator=generator))


def exported(net: nn.Module) -> torch.fx.GraphModule:
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(net, inputs(2, 0), dynamic_shapes={"mel": {0: batch}, "face": {0: batch}})
    return program.module()


def batch_norms(module: torch.fx.GraphModule) -> int:
    return sum(1 for n in module.graph.nodes if "batch_norm" in str(n.target))


@pytest.mark.parametrize("decomposed", [False, True])
def test_folding_removes_every_batch_norm_and_keeps_the_outputs(decomposed: bool):
    net = trained_like(SmallNet())
    module = exported(net)
    if decomposed:  # the core-ATen form torch.export gives after decompositions
        batch = torch.export.Dim("batch", min=1, max=64)
        module = torch.export.export(net, inputs(2, 0), dynamic_shapes={"mel": {0: batch}, "face": {0: batch}}
                                     ).run_decompositions().module()
    assert batch_norms(module) == 4
    assert fold_batch_norm(module) == 4
    assert batch_norms(module) == 0
    for seed in range(3):  # fresh inputs each time
        mel, face = inputs(5, seed)
        with torch.no_grad():
            expected, folded = net(mel, face), module(mel, face)
        assert torch.linalg.norm(folded - expected) / torch.linalg.norm(expected) < 1e-5


def test_a_batch_norm_whose_convolution_is_used_elsewhere_is_left_alone():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm = nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
            x = self.conv(face)
            return torch.sigmoid(self.norm(x) + x)[:, :3]

    net = trained_like(Shared())
    module = exported(net)
    assert fold_batch_norm(module) == 0
    mel, face = inputs(2, 1)
    with torch.no_grad():
        assert torch.allclose(module(mel, face), net(mel, face))


def test_optimize_lays_out_channels_last_and_records_what_it_did():
    net = trained_like(SmallNet())
    prepared = optimize(exported(net), NetworkOptions(device="cpu", half=True, channels_last=True, compile="off"))
    assert prepared.folded == 4 and not prepared.compiled
    assert prepared.dtype == torch.float32  # float16 only on CUDA
    mel, face = network.example_batch(prepared, 4, SIZE)
    assert face.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(prepared.forward(mel, face), net(mel, face), atol=1e-5)


def test_a_failing_compile_falls_back_to_the_uncompiled_network(caplog: pytest.LogCaptureFixture):
    net = trained_like(SmallNet())
    plain = optimize(exported(net), NetworkOptions(device="cpu", compile="off"))

    def broken(mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no compiler here")

    compiled = network.PreparedNetwork(broken, plain.device, plain.dtype, plain.channels_last, True, plain.folded)
    chosen = warm_up(compiled, SIZE, (2, 8), fallback=lambda: plain)
    assert chosen is plain and "running it uncompiled" in caplog.text
    with pytest.raises(RuntimeError):  # without a fallback the error is the caller's
        warm_up(compiled, SIZE, (2,))


def test_compile_auto_compiles_on_cuda_only():
    assert not network._compile_wanted("auto", torch.device("cpu"))
    assert network._compile_wanted("auto", torch.device("cuda"))
    assert network._compile_wanted("on", torch.device("cpu"))
    assert not network._compile_wanted("off", torch.device("cuda"))


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_both_torch_formats_load_folded_and_give_the_reference_outputs(tmp_path: Path, suffix: str):
    net = trained_like(SmallNet())
    path = tmp_path / f"net{suffix}"
    if suffix == ".pt2":
        export_program(net, path, SIZE)
    else:
        export_torchscript(net, path, SIZE)
    model = open_model(path, device="cpu")
    assert model.face_size == SIZE and "channels_last" in model.device
    mel, face = inputs(6, 4)
    with torch.no_grad():
        expected = net(mel, face).numpy()
    assert np.abs(model.infer(mel.numpy(), face.numpy()) - expected).max() < 1e-5
    # One face for every frame (a still portrait) is uploaded once and gives the same outputs.
    same = np.broadcast_to(face[0].numpy(), face.shape)
    with torch.no_grad():
        expected_same = net(mel, torch.from_numpy(np.ascontiguousarray(same))).numpy()
    assert np.abs(model.infer(mel.numpy(), same) - expected_same).max() < 1e-5
