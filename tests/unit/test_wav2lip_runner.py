"""Loading a Wav2Lip network from TorchScript and ONNX files that the test exports, and refusing bad ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from contracts.errors import ModelMissingError, PermanentError
from workers.animation.wav2lip.reference_net import TinyWav2Lip, export_onnx, export_torchscript
from workers.animation.wav2lip.runner import check_model_file, open_model, resolve_model_path

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny() -> TinyWav2Lip:
    torch.manual_seed(0)
    return TinyWav2Lip(96).eval()


def batch(size: int, n: int = 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mel = rng.uniform(-4, 4, (n, 1, 80, 16)).astype(np.float32)
    face = rng.uniform(0, 1, (n, 6, size, size)).astype(np.float32)
    return mel, face


def reference(model: torch.nn.Module, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(mel), torch.from_numpy(face)).numpy()


@pytest.mark.parametrize("metadata", [True, False], ids=["declared-size", "probed-size"])
def test_torchscript_loads_and_matches_the_network(tiny: TinyWav2Lip, tmp_path: Path, metadata: bool):
    path = export_torchscript(tiny, tmp_path / "tiny.pt", 96, metadata=metadata)
    model = open_model(path, device="cpu")
    assert model.face_size == 96 and "cpu" in model.device
    mel, face = batch(96)
    out = model.infer(mel, face)
    assert out.shape == (5, 3, 96, 96) and out.dtype == np.float32
    assert np.allclose(out, reference(tiny, mel, face), atol=1e-5)


def test_onnx_reads_the_face_size_from_its_input_shape(tmp_path: Path):
    torch.manual_seed(1)
    net = TinyWav2Lip(64).eval()
    model = open_model(export_onnx(net, tmp_path / "tiny.onnx", 64), device="auto")
    assert model.face_size == 64
    assert "ExecutionProvider" in model.device
    for n in (1, 7):  # the batch axis is dynamic
        mel, face = batch(64, n)
        assert np.allclose(model.infer(mel, face), reference(net, mel, face), atol=5e-4)


def test_declared_face_size_wins_over_probing(tmp_path: Path):
    torch.manual_seed(2)
    net = TinyWav2Lip(64).eval()
    assert open_model(export_torchscript(net, tmp_path / "declared.pt", 64), device="cpu").face_size == 64
    undeclared = export_torchscript(net, tmp_path / "undeclared.pt", 64, metadata=False)
    with pytest.raises(ModelMissingError, match="FACE_SIZE"):
        open_model(undeclared, device="cpu")  # 64 is none of the usual sizes
    assert open_model(undeclared, device="cpu", face_size=64).face_size == 64


def test_infer_checks_shapes(tiny: TinyWav2Lip, tmp_path: Path):
    model = open_model(export_torchscript(tiny, tmp_path / "tiny.pt", 96), device="cpu")
    mel, face = batch(96, 2)
    with pytest.raises(ValueError):
        model.infer(mel[:1], face)
    with pytest.raises(ValueError):
        model.infer(mel, face[:, :, :64, :64])


def test_a_missing_network_names_the_conversion_command(tmp_path: Path):
    with pytest.raises(ModelMissingError, match="workers.animation.wav2lip.convert") as missing:
        resolve_model_path(tmp_path, "wav2lip")
    assert str(tmp_path / "wav2lip") in missing.value.message
    (tmp_path / "wav2lip").mkdir()
    with pytest.raises(ModelMissingError, match="no Wav2Lip network"):
        resolve_model_path(tmp_path, "wav2lip")


def test_the_model_setting_names_a_file_or_a_folder_with_one(tiny: TinyWav2Lip, tmp_path: Path):
    folder = tmp_path / "wav2lip"
    folder.mkdir()
    path = export_torchscript(tiny, folder / "net.pt", 96)
    (folder / "README.txt").write_text("not a network")
    assert resolve_model_path(tmp_path, "wav2lip") == path
    assert resolve_model_path(tmp_path, str(path)) == path
    assert resolve_model_path(tmp_path, "wav2lip/net.pt") == path
    export_onnx(tiny, folder / "net.onnx", 96)
    with pytest.raises(ModelMissingError, match="several networks"):
        resolve_model_path(tmp_path, "wav2lip")
    with pytest.raises(ModelMissingError, match="not a torch.export"):
        resolve_model_path(tmp_path, "wav2lip/README.txt")


@pytest.mark.parametrize("name", ["broken.pt", "broken.onnx"])
def test_corrupt_files_fail_clearly(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(b"\x00not a network\x01" * 100)
    with pytest.raises(ModelMissingError):
        open_model(path, device="cpu")


def test_an_unconverted_checkpoint_is_refused_with_a_hint(tiny: TinyWav2Lip, tmp_path: Path):
    path = tmp_path / "wav2lip_gan.pt"
    torch.save({"state_dict": tiny.state_dict()}, str(path))  # a zip archive, but no TorchScript
    check_model_file(path)
    with pytest.raises(ModelMissingError, match="converted first"):
        open_model(path, device="cpu")


def test_a_network_of_another_contract_is_refused(tmp_path: Path):
    class Wrong(torch.nn.Module):
        def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
            return face[:, :3, :48]  # wrong output size

    traced = torch.jit.trace(Wrong(), (torch.zeros(1, 1, 80, 16), torch.zeros(1, 6, 96, 96)))
    path = tmp_path / "wrong.pt"
    torch.jit.save(traced, str(path))
    with pytest.raises(ModelMissingError, match="contract|face size"):
        open_model(path, device="cpu", face_size=96)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_demanding_cuda_without_a_gpu_is_a_clear_error(tiny: TinyWav2Lip, tmp_path: Path):
    with pytest.raises(PermanentError) as error:
        open_model(export_torchscript(tiny, tmp_path / "tiny.pt", 96), device="cuda")
    assert error.value.code == "no_gpu"
    with pytest.raises(PermanentError):
        open_model(tmp_path / "tiny.pt", device="tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_torchscript_on_cuda_matches_the_cpu(tiny: TinyWav2Lip, tmp_path: Path):
    path = export_torchscript(tiny, tmp_path / "tiny.pt", 96)
    cpu = open_model(path, device="cpu")
    gpu = open_model(path, device="auto")
    assert gpu.device.startswith("cuda")
    mel, face = batch(96, 16)
    expected = cpu.infer(mel, face)
    assert np.allclose(gpu.infer(mel, face), expected, atol=2e-3)
    half = open_model(path, device="cuda", half=True)
    assert "float16" in half.device
    assert np.allclose(half.infer(mel, face), expected, atol=2e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_onnx_uses_the_cuda_provider_when_onnxruntime_has_it(tiny: TinyWav2Lip, tmp_path: Path):
    import onnxruntime

    model = open_model(export_onnx(tiny, tmp_path / "tiny.onnx", 96), device="auto")
    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    assert model.device.startswith("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    mel, face = batch(96, 4)
    assert np.allclose(model.infer(mel, face), reference(tiny, mel, face), atol=2e-3)
