"""Frames per second of the wav2lip network as the backend can run it, and of the backend's ``infer``.

    python -m bench.wav2lip [--batch-sizes 8 128 256] [--frames 4096]

The network is the original Wav2Lip generator (``reference_net.Wav2Lip``, 36.3 M
parameters, 96x96 faces) with random weights whose batch-norm statistics are away from
0 and 1 (no weights ship; the speed does not depend on them). Two tables:

* **network**: the network alone on device-resident inputs (four input sets in turn,
  timed with CUDA events; wall clock on the CPU), in the ways the backend can load it:
  ``fp32`` and ``fp16`` TorchScript as traced (how it ran before the pooled pipeline),
  ``fp16 cl+fold`` (a ``.pt2`` program through ``network.optimize``: batch norm folded,
  channels_last, not compiled) and ``fp16 compiled`` (the same, ``torch.compile`` with
  inductor and freezing). ``max |Δ|`` is the largest difference from the fp32 network's
  output on the same inputs (outputs are in [0, 1]).
* **infer**: the backend's numpy ``infer(mel, face)`` (host arrays in, host array out,
  every copy included) with the TorchScript fp16 network and a per-frame face array
  (the threaded path before), and with the compiled ``.pt2`` network and one broadcast
  face (``np.broadcast_to``: uploaded once).

The pooled pipeline does not go through ``infer``; ``bench/streams.py`` measures it end
to end. Results go to ``$OUT/wav2lip.json`` (or bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench.streams import trained_like
from workers.animation.wav2lip import network
from workers.animation.wav2lip.reference_net import export_program, export_torchscript, parameter_count
from workers.animation.wav2lip.runner import open_model

SIZE = 96


def inputs(batch: int, device: torch.device, dtype: torch.dtype, channels_last: bool,
           sets: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(batch)
    out = []
    for _ in range(sets):
        mel = (torch.rand((batch, 1, 80, 16), generator=generator) * 8 - 4).to(device, dtype)
        face = torch.rand((batch, 6, SIZE, SIZE), generator=generator).to(device, dtype)
        if channels_last:
            mel, face = mel.contiguous(memory_format=torch.channels_last), face.contiguous(
                memory_format=torch.channels_last)
        out.append((mel, face))
    return out


def timed_fps(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              sets: list[tuple[torch.Tensor, torch.Tensor]], iterations: int, device: torch.device) -> float:
    """Median frames per second of three timed loops of ``iterations`` batches, after a warm-up."""
    batch = sets[0][0].shape[0]
    rates = []
    with torch.inference_mode():
        for i in range(3):
            forward(*sets[i % len(sets)])
        for _ in range(3):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                start.record()
                for i in range(iterations):
                    forward(*sets[i % len(sets)])
                end.record()
                torch.cuda.synchronize()
                seconds = start.elapsed_time(end) / 1000
            else:
                started = time.perf_counter()
                for i in range(iterations):
                    forward(*sets[i % len(sets)])
                seconds = time.perf_counter() - started
            rates.append(batch * iterations / seconds)
    return statistics.median(rates)


def network_rows(scratch: Path, batches: list[int], frames: int, device: torch.device) -> list[dict[str, Any]]:
    net = trained_like()
    script = export_torchscript(net, scratch / "w.pt", SIZE)
    program = export_program(net, scratch / "w.pt2", SIZE)
    cuda = device.type == "cuda"
    half = torch.float16 if cuda else torch.float32

    def torchscript(dtype: torch.dtype) -> network.PreparedNetwork:
        module = torch.jit.load(str(script), map_location=device).eval().to(dtype)
        return network.PreparedNetwork(module, device, dtype, False, False, 0)

    variants: list[tuple[str, Callable[[], network.PreparedNetwork]]] = [
        ("fp32", lambda: torchscript(torch.float32)),
        ("fp16", lambda: torchscript(half)),
        ("fp16 cl+fold", lambda: network.optimize(network.load_exported(str(program), device),
                                                  network.NetworkOptions(str(device), True, True, "off"))),
        ("fp16 compiled", lambda: network.optimize(network.load_exported(str(program), device),
                                                   network.NetworkOptions(str(device), True, True, "on"))),
    ]
    reference = torchscript(torch.float32)
    rows = []
    for label, make in variants:
        started = time.perf_counter()
        prepared = make()
        if prepared.compiled:
            prepared = network.warm_up(prepared, SIZE, batches)
        load_s = time.perf_counter() - started
        for batch in batches:
            sets = inputs(batch, device, prepared.dtype, prepared.channels_last)
            with torch.inference_mode():
                expected = reference.forward(*(t.float().contiguous() for t in sets[0]))
                got = prepared.forward(*sets[0]).float()
            error = float((got - expected).abs().max())
            fps = timed_fps(prepared.forward, sets, max(2, frames // batch), device)
            row = {"variant": label, "batch": batch, "fps": round(fps, 1), "max_abs_diff": error,
                   "load_s": round(load_s, 1), "folded": prepared.folded, "compiled": prepared.compiled}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del prepared
    return rows


def infer_rows(scratch: Path, batches: list[int], frames: int, device: torch.device) -> list[dict[str, Any]]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    configs: list[tuple[str, str, network.CompileMode, bool]] = [
        ("TorchScript fp16, per-frame faces", "w.pt", "off", False),
        ("pt2 compiled, one face", "w.pt2", "auto", True)]
    for label, name, compile_mode, broadcast in configs:
        model = open_model(scratch / name, str(device), 0, True, compile=compile_mode, buckets=batches)
        for batch in batches:
            rng = np.random.default_rng(batch)
            sets = []
            for _ in range(4):
                mel = rng.uniform(-4, 4, (batch, 1, 80, 16)).astype(np.float32)
                face = rng.uniform(0, 1, (6, SIZE, SIZE)).astype(np.float32)
                faces = np.broadcast_to(face, (batch, 6, SIZE, SIZE))
                sets.append((mel, faces if broadcast else np.ascontiguousarray(faces)))
            for i in range(2):
                model.infer(*sets[i])
            iterations = max(2, frames // batch)
            rates = []
            for _ in range(3):
                sync()
                started = time.perf_counter()
                for i in range(iterations):
                    model.infer(*sets[i % 4])
                sync()
                rates.append(batch * iterations / (time.perf_counter() - started))
            row = {"variant": label, "device": model.device, "batch": batch, "fps": round(statistics.median(rates), 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        model.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 128, 256])
    parser.add_argument("--frames", type=int, default=4096, help="frames per timed loop")
    parser.add_argument("--skip-infer", action="store_true")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
    with tempfile.TemporaryDirectory(prefix="bench-wav2lip-") as folder:
        scratch = Path(folder)
        net_rows = network_rows(scratch, args.batch_sizes, args.frames, device)
        api_rows = [] if args.skip_infer else infer_rows(scratch, args.batch_sizes, args.frames, device)

    print(f"\nwav2lip (original architecture, {parameter_count(trained_like()) / 1e6:.1f} M parameters, random "
          f"weights, 96x96 faces) on {name}, torch {torch.__version__}; frames per second")
    print(f"{'network':<16} {'batch':>5} {'fps':>9} {'max |Δ|':>9}")
    for row in net_rows:
        print(f"{row['variant']:<16} {row['batch']:>5} {row['fps']:>9.0f} {row['max_abs_diff']:>9.1e}")
    if api_rows:
        print(f"\n{'infer':<36} {'batch':>5} {'fps':>9}")
        for row in api_rows:
            print(f"{row['variant']:<36} {row['batch']:>5} {row['fps']:>9.0f}")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / "wav2lip.json"
    target.write_text(json.dumps({"device": name, "torch": torch.__version__, "network": net_rows,
                                  "infer": api_rows}, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
