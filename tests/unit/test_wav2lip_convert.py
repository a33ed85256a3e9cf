"""Converting an original Wav2Lip checkpoint (full-size generator, random weights) for the backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from workers.animation.wav2lip.convert import main
from workers.animation.wav2lip.reference_net import TinyWav2Lip, Wav2Lip, example_inputs, parameter_count
from workers.animation.wav2lip.runner import open_model

pytestmark = pytest.mark.unit


def test_the_reference_generator_has_the_original_size_and_contract():
    torch.manual_seed(0)
    net = Wav2Lip().eval()
    assert 36_000_000 < parameter_count(net) < 36_600_000  # the original has 36.3M parameters
    mel, face = example_inputs(96, batch=2)
    with torch.no_grad():
        out = net(mel, face)
    assert out.shape == (2, 3, 96, 96) and 0 <= out.min() and out.max() <= 1


def test_an_original_style_checkpoint_converts_and_loads_with_the_same_output(tmp_path: Path, capsys):
    torch.manual_seed(1)
    net = Wav2Lip().eval()
    with torch.no_grad():  # BatchNorm statistics as after training, not the initial 0 and 1
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    checkpoint = tmp_path / "wav2lip_gan.pth"
    # As the original training script saves it, under DataParallel's "module." prefix.
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                "global_step": 1, "global_epoch": 1}, str(checkpoint))
    output = tmp_path / "models" / "wav2lip.pt"
    assert main([str(checkpoint), "--output", str(output)]) == 0
    assert "wrote" in capsys.readouterr().out

    model = open_model(output, device="cpu")
    assert model.face_size == 96
    mel, face = example_inputs(96, batch=3, seed=4)
    with torch.no_grad():
        expected = net(mel, face).numpy()
    assert np.allclose(model.infer(mel.numpy(), face.numpy()), expected, atol=1e-4)


def test_a_checkpoint_of_another_network_is_refused(tmp_path: Path, capsys):
    checkpoint = tmp_path / "other.pth"
    torch.save({"state_dict": TinyWav2Lip().state_dict()}, str(checkpoint))
    assert main([str(checkpoint), "--output", str(tmp_path / "out.pt")]) == 2
    assert "not a Wav2Lip generator checkpoint" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"junk")
    assert main([str(tmp_path / "junk.pth"), "--output", str(tmp_path / "out.pt")]) == 2
    assert not (tmp_path / "out.pt").exists()
