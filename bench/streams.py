"""Concurrent real-time talking streams end to end: speech in, MP4 segments out, on one machine.

    python -m bench.streams [--streams 16 64 128 160] [--segments 2] [--seconds 4] [--pipeline pooled]

Each stream is one talking head answering in ``--segments`` sentence segments of
``--seconds`` of speech each, rendered one after another as a streamed reply's
segments are: speech → Wav2Lip mel windows → the network (the original 36.3 M-parameter
architecture with random weights, ``reference_net.Wav2Lip``) → paste-back into the
512 px repo portrait → H.264 + AAC MP4 (x264 ``veryfast``, CRF 20). The content is
face-like (``--content face``, see ``FaceLike``): a random network's own output is a
nearly constant grey patch, the cheapest thing to encode, so the pasted lower face is
the portrait's own, moved by the speech every frame, in the real face box (from
dlib's landmarks of this portrait, fixed here because the GPU machine has no dlib
models). Streams start spread over ``--ramp`` seconds, all run at once.

``--pipeline pooled`` renders through ``RenderEngine`` (the GPU machine's pipeline:
first frames first, paste-back in torch, encoder processes), ``threaded`` through the
render-thread path (``lip_sync_frames`` + ``FrameBatcher`` + ``VideoWriter`` per render),
which is the whole wav2lip backend before the pooled pipeline existed: run from a copy
of an older checkout, this file measures that code (it imports only what it had).

Per stream count it reports: total frames per second; real-time streams (a stream is
real-time when its frames / its wall time ≥ 25 fps, i.e. it is never behind playback
on average); the slowest stream's fps; each segment's first-frame latency (from its
speech arriving to its first frame pasted and handed to the encoder, and to that
frame encoded), median, 95th percentile and worst; GPU utilisation (NVML, sampled)
and busy cores (/proc/stat). Results go to ``$OUT/streams-<pipeline>.json`` (or
bench/results/).
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

from contracts.audio import resample
from workers.animation.wav2lip.face import CropBox, feather_mask
from workers.animation.wav2lip.mel import WAV2LIP, mel_windows, melspectrogram
from workers.animation.wav2lip.reference_net import Wav2Lip, export_torchscript

PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "portrait.png"
# crop_box of the portrait's dlib landmarks (workers.animation.wav2lip.face), at its 512 px size.
FACE_BOX = CropBox(left=173, top=64, right=278, bottom=186)
FPS = 25
RATE = 24_000  # the rate the animation stage decodes speech at


def speech_like(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Syllable-like voiced sound (a stand-in for speech; the network's cost does not depend on it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    syllables = np.clip(np.sin(2 * np.pi * 3.5 * t + seed), 0, None) ** 1.5
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.4 * syllables * (voiced + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def trained_like(seed: int = 0) -> Wav2Lip:
    """Random weights with batch-norm statistics away from 0/1, so that nothing folds to a constant."""
    torch.manual_seed(seed)
    net = Wav2Lip().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def portrait() -> np.ndarray:
    image = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {PORTRAIT}")
    return image


class FaceLike(torch.nn.Module):
    """The Wav2Lip network's full cost with face-like output: no trained weights exist to make a real mouth.

    The output is 98 % the reference face crop with its lower half stretched down by the
    speech's loudness in the frame's mel window (a jaw that opens and closes, real skin and
    lips moving every frame, which is what x264 pays for) and 2 % the network's output, so
    the network is really run and cannot be optimised away.
    """

    def __init__(self, net: Wav2Lip, size: int = 96) -> None:
        super().__init__()
        self.net = net
        # A buffer, not a constant in forward: it follows the module to its device and dtype, so that
        # exported and traced graphs hold no device or dtype of their own.
        self.register_buffer("rows", torch.linspace(-1, 1, size))

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        generated = self.net(mel, face)
        reference = face[:, 3:6]
        rows = self.get_buffer("rows")
        size = rows.shape[0]
        opening = ((mel.mean(dim=(1, 2, 3)) + 4) / 8).clamp(0, 1)  # about 0 in silence, 1 when loud
        # Sample the lower half from higher up as the mouth opens: it stretches downwards by up to 12 %.
        source_rows = rows[None, :] - rows.clamp(min=0)[None, :] * 0.12 * opening[:, None]
        grid_y = source_rows[:, :, None].expand(-1, size, size)
        grid_x = rows[None, None, :].expand(face.shape[0], size, size)
        grid = torch.stack([grid_x, grid_y], dim=-1)
        moved = torch.nn.functional.grid_sample(reference, grid, mode="bilinear", align_corners=True)
        return 0.98 * moved + 0.02 * generated


def windows_of(audio: np.ndarray) -> np.ndarray:
    """What the backend does with a segment's speech before the network (resample, mel, windows)."""
    frames = max(1, int(round(len(audio) * FPS / RATE)))
    return mel_windows(melspectrogram(resample(audio, RATE, WAV2LIP.sample_rate)), frames, FPS)


class Sampler:
    """GPU utilisation (NVML) and busy cores (/proc/stat) over a run."""

    def __init__(self) -> None:
        self._gpu: list[float] = []
        self._stop = threading.Event()
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = (pynvml, pynvml.nvmlDeviceGetHandleByIndex(0))
        except Exception:  # no NVML here: utilisation is reported as unknown
            self._nvml = None
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _cpu() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, time.monotonic()

    def __enter__(self) -> Sampler:
        self._busy0 = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        busy, now = self._cpu()
        ticks = os.sysconf("SC_CLK_TCK")
        self.busy_cores = (busy - self._busy0[0]) / ticks / max(now - self._busy0[1], 1e-9)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            if self._nvml is not None:
                pynvml, handle = self._nvml
                self._gpu.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))

    @property
    def gpu_util(self) -> float | None:
        return round(statistics.mean(self._gpu), 1) if self._gpu else None


Renderer = Callable[[np.ndarray, np.ndarray, str], tuple[float, float]]


def pooled_renderer(net: torch.nn.Module, scratch: Path,
                    args: argparse.Namespace) -> tuple[Renderer, Callable[[], None]]:
    """The pooled pipeline: RenderEngine over the network loaded as the backend loads it."""
    from workers.animation.encoder_pool import EncoderPool
    from workers.animation.wav2lip.engine import EngineOptions, RenderEngine
    from workers.animation.wav2lip.reference_net import export_program
    from workers.animation.wav2lip.runner import TorchModel, open_model

    path = export_program(net, scratch / "wav2lip.pt2", 96)
    started = time.perf_counter()
    model = open_model(path, "auto", half=True, compile=args.compile, buckets=(args.first_batch, args.batch_size))
    assert isinstance(model, TorchModel)
    print(f"pooled: {model.device}, loaded (and compiled) in {time.perf_counter() - started:.1f} s", flush=True)
    encoders = EncoderPool(args.encoders)
    engine = RenderEngine(model.network, model.face_size, encoders, EngineOptions(
        batch_size=args.batch_size, first_batch=args.first_batch, frames_ahead=args.frames_ahead,
        max_wait=args.max_wait_ms / 1000))
    image = portrait()
    mask = feather_mask(FACE_BOX)

    def render(audio: np.ndarray, windows: np.ndarray, output: str) -> tuple[float, float]:
        stats = engine.render(image, FACE_BOX, windows, mask, audio, RATE, output, FPS)
        return stats.first_frame_s, stats.first_encoded_s

    def close() -> None:
        engine.close()
        encoders.close()

    return render, close


def threaded_renderer(net: torch.nn.Module, scratch: Path,
                      args: argparse.Namespace) -> tuple[Renderer, Callable[[], None]]:
    """The render-thread path, as the backend ran it before the pooled pipeline (TorchScript, fp16)."""
    from workers.animation.encoder import VideoWriter
    from workers.animation.wav2lip.batcher import FrameBatcher
    from workers.animation.wav2lip.pipeline import lip_sync_frames
    from workers.animation.wav2lip.runner import open_model

    model = open_model(export_torchscript(net, scratch / "wav2lip.pt", 96), "auto", 0, True)
    print(f"threaded: {model.device}", flush=True)
    batcher = FrameBatcher(model.infer, args.batch_size, args.max_wait_ms / 1000)
    image = portrait()
    height, width = image.shape[:2]

    def render(audio: np.ndarray, windows: np.ndarray, output: str) -> tuple[float, float]:
        started = time.monotonic()
        first_ready = first_encoded = 0.0
        with VideoWriter(Path(output), width, height, FPS, audio, RATE) as writer:  # the backend's defaults
            for frame in lip_sync_frames(image, FACE_BOX, windows, batcher, model.face_size,
                                         chunk=args.batch_size, depth=2, timeout=600):
                if not first_ready:
                    first_ready = time.monotonic() - started
                writer.write(frame)
                if not first_encoded:
                    first_encoded = time.monotonic() - started
        return first_ready, first_encoded

    return render, batcher.close


def run_streams(render: Renderer, count: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """``count`` streams at once; each renders its segments one after another."""
    audio = [speech_like(args.seconds, seed) for seed in range(8)]
    frames_per_segment = len(windows_of(audio[0]))
    streams: list[dict[str, Any]] = [{} for _ in range(count)]
    segments: list[dict[str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    origin = time.monotonic()

    def stream(index: int) -> None:
        time.sleep(args.ramp * index / max(1, count))
        started = time.monotonic()
        frames = 0
        for segment in range(args.segments):
            k = (index + segment) % len(audio)
            output = str(scratch / f"s{index}-{segment}.mp4")
            arrived = time.monotonic()  # the segment's speech is here: from now on the user waits
            try:
                speech_windows = windows_of(audio[k])  # in the render thread, as the backend does
                before = time.monotonic() - arrived
                first_ready, first_encoded = render(audio[k], speech_windows, output)
            except Exception as e:  # reported with the results
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                return
            frames += frames_per_segment
            with lock:
                segments.append({"first_ready_s": before + first_ready, "first_encoded_s": before + first_encoded,
                                 "segment_s": time.monotonic() - arrived})
            os.unlink(output)
        streams[index] = {"start": started - origin, "end": time.monotonic() - origin, "frames": frames}

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(count)]
    with Sampler() as sampler:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    done = [s for s in streams if s]
    fps = [s["frames"] / (s["end"] - s["start"]) for s in done]
    wall = max(s["end"] for s in done) - min(s["start"] for s in done) if done else 0.0
    ready = sorted(s["first_ready_s"] for s in segments)
    encoded = sorted(s["first_encoded_s"] for s in segments)

    def pct(values: list[float], q: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")

    return {
        "streams": count, "completed": len(done), "errors": errors[:5], "frames": sum(s["frames"] for s in done),
        "wall_s": round(wall, 2), "total_fps": round(sum(s["frames"] for s in done) / max(wall, 1e-9), 1),
        "realtime_streams": sum(1 for f in fps if f >= FPS), "min_stream_fps": round(min(fps), 1) if fps else 0,
        "median_stream_fps": round(statistics.median(fps), 1) if fps else 0,
        "first_ready_ms": {"p50": pct(ready, 0.5), "p95": pct(ready, 0.95), "max": pct(ready, 1.0)},
        "first_encoded_ms": {"p50": pct(encoded, 0.5), "p95": pct(encoded, 0.95), "max": pct(encoded, 1.0)},
        "gpu_util_pct": sampler.gpu_util, "busy_cores": round(sampler.busy_cores, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 64, 128, 160])
    parser.add_argument("--segments", type=int, default=2, help="sentence segments per stream, one after another")
    parser.add_argument("--seconds", type=float, default=4.0, help="speech per segment")
    parser.add_argument("--ramp", type=float, default=1.0, help="streams start spread over this many seconds")
    parser.add_argument("--pipeline", choices=["pooled", "threaded"], default="pooled")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--first-batch", type=int, default=8)
    parser.add_argument("--frames-ahead", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--encoders", type=int, default=0, help="encoder processes (0: one per core)")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--tag", default="", help="added to the results file's name")
    parser.add_argument("--content", choices=["face", "flat"], default="face",
                        help="face: the face crop moved by the speech (FaceLike); flat: the random network's own "
                             "output, a nearly constant patch (the cheapest content to encode)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    net: torch.nn.Module = FaceLike(trained_like()).eval() if args.content == "face" else trained_like()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        scratch = Path(folder)
        make = pooled_renderer if args.pipeline == "pooled" else threaded_renderer
        render, close = make(net, scratch, args)
        try:
            run_streams(render, 2, argparse.Namespace(**{**vars(args), "segments": 1}), scratch)  # warm-up
            for count in args.streams:
                row = run_streams(render, count, args, scratch)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            close()
    print(f"\n{args.pipeline} pipeline on {device}, {os.cpu_count()} cores; {args.segments} segments of "
          f"{args.seconds:g} s per stream, 512 px portrait, {args.content} content, batch {args.batch_size}")
    print(f"{'streams':>7} {'total fps':>9} {'real-time':>9} {'min fps':>7} {'first frame ms p50/p95/max':>27} "
          f"{'encoded ms p50/p95/max':>23} {'GPU %':>5} {'cores':>5}")
    for r in rows:
        ready, enc = r["first_ready_ms"], r["first_encoded_ms"]
        gpu = "-" if r["gpu_util_pct"] is None else f"{r['gpu_util_pct']:.0f}"
        print(f"{r['streams']:>7} {r['total_fps']:>9.0f} {r['realtime_streams']:>9} {r['min_stream_fps']:>7.1f} "
              f"{ready['p50']:>9.0f}/{ready['p95']:.0f}/{ready['max']:.0f} "
              f"{enc['p50']:>9.0f}/{enc['p95']:.0f}/{enc['max']:.0f} {gpu:>5} {r['busy_cores']:>5.1f}")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"streams-{args.pipeline}{args.tag}.json"
    target.write_text(json.dumps({"device": device, "cores": os.cpu_count(), "torch": torch.__version__,
                                  "args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
