"""Frames per second of the wav2lip backend's batched inference path, at several batch sizes.

    python -m bench.wav2lip [--batch-sizes 1 16 64 128] [--seconds 10] [--renders 4] [--onnx] [--half]

The network is the original Wav2Lip generator (``reference_net.Wav2Lip``, 36.3M
parameters, 96x96 faces) with random weights: no weights ship, and the speed does not
depend on them. It is exported to TorchScript (and with ``--onnx`` to ONNX) and loaded
through the backend's own loader, on CUDA when torch sees a GPU. For each batch size:

* ``gpu``: the network alone on device-resident tensors (CUDA events; on the CPU, wall clock);
* ``net``: the backend's ``infer`` (numpy in, host-to-device copy, network, copy back);
* ``path``: one render's whole batched path: mel spectrogram and windows, face crop,
  the ``FrameBatcher`` thread, paste-back of every frame into the 512x512 repo portrait
  (no video encoding: that is the landmark bench's business and runs on the CPU alike);
* ``path xN``: ``--renders`` renders at once through one shared batcher (as a worker
  with ``--pool threads`` runs them), total frames per second of all of them.

ONNX Runtime without its CUDA provider on a GPU machine gets the ``net`` column only,
over fewer frames (it runs on the CPU there).

Needs only numpy, OpenCV and torch (and onnxruntime for ``--onnx``), not the farm's
dependencies, so it runs as is on the GPU machine. The table goes to stdout, the
numbers to ``$OUT/wav2lip.json`` when ``OUT`` is set, else bench/results/wav2lip.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from workers.animation.wav2lip.batcher import FrameBatcher
from workers.animation.wav2lip.face import CropBox
from workers.animation.wav2lip.mel import WAV2LIP, mel_windows, melspectrogram
from workers.animation.wav2lip.pipeline import lip_sync_frames
from workers.animation.wav2lip.reference_net import Wav2Lip, export_onnx, export_torchscript, parameter_count
from workers.animation.wav2lip.runner import LipSyncModel, open_model

PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "portrait.png"
FPS = 25


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rate = WAV2LIP.sample_rate
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None) ** 1.5
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.4 * syllables * (voiced + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def trained_like(seed: int = 0) -> Wav2Lip:
    """Random weights with BatchNorm statistics away from 0/1, so nothing folds to a constant."""
    torch.manual_seed(seed)
    net = Wav2Lip().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def median_time(step: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def gpu_fps(path: Path, batch: int, half: bool, iterations: int) -> float:
    """The TorchScript network on device tensors, timed with CUDA events (wall clock on the CPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if half and device.type == "cuda" else torch.float32
    module = torch.jit.load(str(path), map_location=device).eval().to(dtype)
    generator = torch.Generator(device=device).manual_seed(batch)
    sets = [(torch.rand((batch, 1, 80, 16), generator=generator, device=device, dtype=dtype) * 8 - 4,
             torch.rand((batch, 6, 96, 96), generator=generator, device=device, dtype=dtype)) for _ in range(4)]
    with torch.inference_mode():
        for i in range(3):
            module(*sets[i % 4])
        if device.type == "cuda":
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for i in range(iterations):
                module(*sets[i % 4])
            end.record()
            torch.cuda.synchronize()
            seconds = start.elapsed_time(end) / 1000
        else:
            started = time.perf_counter()
            for i in range(iterations):
                module(*sets[i % 4])
            seconds = time.perf_counter() - started
    return batch * iterations / seconds


def net_fps(model: LipSyncModel, batch: int, iterations: int, sync: Callable[[], None]) -> float:
    rng = np.random.default_rng(batch)
    sets = [(rng.uniform(-4, 4, (batch, 1, 80, 16)).astype(np.float32),
             rng.uniform(0, 1, (batch, 6, 96, 96)).astype(np.float32)) for _ in range(4)]
    for i in range(2):
        model.infer(*sets[i])

    def run() -> None:
        for i in range(iterations):
            model.infer(*sets[i % 4])

    return batch * iterations / median_time(run, 3, sync)


def path_fps(model: LipSyncModel, image: np.ndarray, box: CropBox, audios: list[np.ndarray], batch: int,
             sync: Callable[[], None]) -> tuple[float, dict[str, int]]:
    """Frames per second of ``len(audios)`` renders at once through one batcher (mel to pasted frame)."""
    batcher = FrameBatcher(model.infer, batch, max_wait=0.005)
    frames_done = [0] * len(audios)

    def render(i: int) -> None:
        audio = audios[i]
        frames = int(round(len(audio) * FPS / WAV2LIP.sample_rate))
        windows = mel_windows(melspectrogram(audio), frames, FPS)
        for frame in lip_sync_frames(image, box, windows, batcher, model.face_size, chunk=batch, depth=2,
                                     timeout=600):
            frames_done[i] += 1
            assert frame.shape == image.shape

    def run_all() -> None:
        threads = [threading.Thread(target=render, args=(i,)) for i in range(len(audios))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    run_all()  # warm-up
    seconds = median_time(run_all, 3, sync)
    batcher.close()
    total = sum(frames_done) // 4  # four runs: the warm-up and three timed
    stats = {"batches": batcher.stats.batches, "shared_batches": batcher.stats.shared_batches,
             "max_batch": batcher.stats.max_batch}
    return total / seconds, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 128])
    parser.add_argument("--seconds", type=float, default=10.0, help="speech per render in the path columns")
    parser.add_argument("--renders", type=int, default=4, help="concurrent renders for the shared-batcher column")
    parser.add_argument("--frames", type=int, default=1024, help="frames per timing of the network columns")
    parser.add_argument("--onnx", action="store_true", help="also time the ONNX export on ONNX Runtime")
    parser.add_argument("--half", action="store_true", help="also time TorchScript in float16 (CUDA only)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    image = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {PORTRAIT}")
    # A face-sized box where the repo portrait's face is; its place does not change the cost.
    height, width = image.shape[:2]
    box = CropBox(int(0.30 * width), int(0.22 * height), int(0.70 * width), int(0.70 * height))
    audios = [speech_like(args.seconds, seed) for seed in range(max(1, args.renders))]
    net = trained_like()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-wav2lip-") as scratch:
        variants: list[tuple[str, Path, bool]] = [("torchscript", export_torchscript(net, Path(scratch) / "w.pt", 96),
                                                   False)]
        if args.half and cuda:
            variants.append(("torchscript fp16", variants[0][1], True))
        if args.onnx:
            variants.append(("onnx", export_onnx(net, Path(scratch) / "w.onnx", 96), False))
        for label, path, half in variants:
            started = time.perf_counter()
            model = open_model(path, "auto", half=half)
            load_s = time.perf_counter() - started
            for batch in args.batch_sizes:
                iterations = max(2, args.frames // batch)
                row: dict[str, Any] = {"runtime": label, "device": model.device, "batch": batch,
                                       "load_s": round(load_s, 2)}
                if label.startswith("torchscript"):
                    row["gpu_fps"] = round(gpu_fps(path, batch, half, iterations), 1)
                if cuda and "CPU" in model.device:
                    # ONNX Runtime without its CUDA provider on a GPU machine: the network alone, briefly.
                    row["net_fps"] = round(net_fps(model, batch, max(2, 128 // batch), sync), 1)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                row["net_fps"] = round(net_fps(model, batch, iterations, sync), 1)
                row["path_fps"], _ = path_fps(model, image, box, audios[:1], batch, sync)
                row["path_fps"] = round(row["path_fps"], 1)
                if args.renders > 1:
                    fps, stats = path_fps(model, image, box, audios, batch, sync)
                    row[f"path_x{args.renders}_fps"] = round(fps, 1)
                    row["shared_batches"] = stats["shared_batches"]
                rows.append(row)
                print(json.dumps(row), flush=True)
            model.close()

    print()
    print(f"wav2lip (original architecture, {parameter_count(net) / 1e6:.1f}M parameters, random weights, "
          f"96x96 faces) on {device_name}; frames per second")
    print(f"path: {args.seconds:.0f} s renders of the 512x512 portrait, mel to pasted frame, no encoding; "
          f"path x{args.renders}: {args.renders} renders sharing one batcher")
    header = f"{'runtime':<17} {'batch':>5} {'gpu':>9} {'net':>9} {'path':>8} {f'path x{args.renders}':>9}"
    print(header)
    for row in rows:
        cells = [row.get(key, float("nan")) for key in ("gpu_fps", "net_fps", "path_fps", f"path_x{args.renders}_fps")]
        print(f"{row['runtime']:<17} {row['batch']:>5} {cells[0]:>9.1f} {cells[1]:>9.1f} {cells[2]:>8.1f} "
              f"{cells[3]:>9.1f}  {row['device']}")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / "wav2lip.json"
    target.write_text(json.dumps({
        "device": device_name, "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "parameters": parameter_count(net), "face_size": 96, "seconds_per_render": args.seconds,
        "renders": args.renders, "rows": rows,
    }, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
