"""Concurrent real-time talking streams end to end: speech in, MP4 segments out, on one machine.

    python -m bench.streams [--streams 16 64 128 160] [--segments 2] [--seconds 4] [--pipeline pooled]
                            [--arrivals together staggered]

Each stream is one talking head answering in ``--segments`` sentence segments of
``--seconds`` of speech each, rendered one after another as a streamed reply's
segments are: speech → Wav2Lip mel windows → the network (the original 36.3 M-parameter
architecture with random weights, ``reference_net.Wav2Lip``) → paste-back into the
512 px repo portrait → H.264 + AAC MP4 (x264 ``veryfast``, CRF 20). The content is
face-like (``--content face``, see ``FaceLike``): a random network's own output is a
nearly constant grey patch, the cheapest thing to encode, so the pasted lower face is
the portrait's own, moved by the speech every frame, in the real face box (from
dlib's landmarks of this portrait, fixed here because the GPU machine has no dlib
models).

How segments arrive (``--arrivals``, each pattern reported on its own):

* ``together``: streams start spread over ``--ramp`` seconds (1 s), and each renders
  its segments back to back, the next one's speech there as soon as the last video
  is done: a wave of segments that start together, the worst case for first frames.
* ``staggered``: streams start spread over ``--stagger`` seconds (one segment's
  length by default), and segment k of a stream arrives ``k * --seconds`` after the
  stream's start, as a streamed reply's TTS hands sentences over at playback pace
  (or once the stream's previous video is done, if that is later): the steady state
  of streams that come and go. A stream is real-time here when its segments' renders
  took no longer than their speech (frames / render seconds ≥ 25).

With this checkout's engine the stream thread hands the engine the speech as a
``mel.SegmentWindows`` (the engine resamples it and computes the first batch's windows
before the render starts, in its first-windows processes, and the rest meanwhile), as
the backend does; with an older checkout's it resamples and computes every window first.

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

try:  # this checkout's lazy windows; an older checkout's engine takes only whole arrays
    from workers.animation.wav2lip.mel import SegmentWindows
except ImportError:  # pragma: no cover - older checkouts
    SegmentWindows = None  # type: ignore[assignment,misc]
from workers.animation.wav2lip.reference_net import Wav2Lip, export_torchscript

PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "portrait.png"
# crop_box of the portrait's dlib landmarks (workers.animation.wav2lip.face), at its 512 px size.
FACE_BOX = CropBox(left=173, top=64, right=278, bottom=186)
FPS = 25
RATE = 24_000  # the rate the animation stage decodes speech at
ENCODER_PIDS: set[int] = set()  # the encoder pool's processes; other children are the engine's mel processes


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


def segment_windows(audio: np.ndarray, lazy: bool) -> Any:
    """What the backend hands the engine: ``SegmentWindows`` where this checkout has them, else every window."""
    if not lazy or SegmentWindows is None:
        return windows_of(audio)
    frames = max(1, int(round(len(audio) * FPS / RATE)))
    try:  # resampled by whoever computes the first windows (the engine), where this checkout's can
        return SegmentWindows(audio, frames, FPS, sample_rate=RATE)
    except TypeError:
        return SegmentWindows(resample(audio, RATE, WAV2LIP.sample_rate), frames, FPS)


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
        self.seconds = now - self._busy0[1]
        self.busy_cores = (busy - self._busy0[0]) / ticks / max(self.seconds, 1e-9)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            if self._nvml is not None:
                pynvml, handle = self._nvml
                self._gpu.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))

    @property
    def gpu_util(self) -> float | None:
        return round(statistics.mean(self._gpu), 1) if self._gpu else None


# A render of one segment: (speech, mel windows, output path) → seconds from the call to its first frame
# "ready" (pasted, handed to the encoder) and "encoded", and where known "setup" and "launched" (see RenderStats).
Renderer = Callable[[np.ndarray, np.ndarray, str], dict[str, float]]


def _accepted(call: Callable[..., Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``wanted`` that ``call`` takes: this file also drives older checkouts' code."""
    import inspect

    names = inspect.signature(call).parameters
    return {k: v for k, v in wanted.items() if k in names}


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
    encoders = EncoderPool(args.encoders, **_accepted(EncoderPool, {"opencv_threads": args.opencv_threads}))
    ENCODER_PIDS.update(p.pid for p in getattr(encoders, "_procs", []) if p.pid)
    options = {"batch_size": args.batch_size, "first_batch": args.first_batch, "frames_ahead": args.frames_ahead,
               "max_wait": args.max_wait_ms / 1000, "preset": args.preset, "poll": args.poll_ms / 1000,
               "mel_processes": args.mel_processes, "setup_cache": args.setup_cache, "setup_slots": args.setup_slots,
               "mel_first_processes": args.mel_first_processes}
    if args.switch_ms > 0:
        options["switch_interval"] = args.switch_ms / 1000
    if args.tune:
        options["tune"] = args.tune
    engine = RenderEngine(model.network, model.face_size, encoders, EngineOptions(**_accepted(EngineOptions, options)))
    print(f"pooled: {encoders.size} encoder processes, x264 {args.preset}{'/' + args.tune if args.tune else ''}",
          flush=True)
    image = portrait()
    mask = feather_mask(FACE_BOX)

    def render(audio: np.ndarray, windows: np.ndarray, output: str) -> dict[str, float]:
        stats = engine.render(image, FACE_BOX, windows, mask, audio, RATE, output, FPS)
        phases = {"ready": stats.first_frame_s, "encoded": stats.first_encoded_s}
        if getattr(stats, "first_launched_s", 0.0):  # this checkout's engine says where the time went
            phases.update(setup=stats.setup_s, launched=stats.first_launched_s)
        return phases

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

    def render(audio: np.ndarray, windows: np.ndarray, output: str) -> dict[str, float]:
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
        return {"ready": first_ready, "encoded": first_encoded}

    return render, batcher.close


def run_streams(render: Renderer, count: int, args: argparse.Namespace, scratch: Path,
                arrivals: str = "together") -> dict[str, Any]:
    """``count`` streams at once; each renders its segments one after another, as ``arrivals`` says."""
    audio = [speech_like(args.seconds, seed) for seed in range(8)]
    frames_per_segment = len(windows_of(audio[0]))
    staggered = arrivals == "staggered"
    spread = (args.stagger if args.stagger > 0 else args.seconds) if staggered else args.ramp
    streams: list[dict[str, Any]] = [{} for _ in range(count)]
    segments: list[dict[str, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    origin = time.monotonic()

    def stream(index: int) -> None:
        threading.current_thread().name = f"stream-{index}"
        time.sleep(spread * index / max(1, count))
        started = time.monotonic()
        frames = 0
        rendering = 0.0
        for segment in range(args.segments):
            k = (index + segment) % len(audio)
            output = str(scratch / f"s{index}-{segment}.mp4")
            if staggered:  # the next sentence's speech comes at playback pace
                time.sleep(max(0.0, started + segment * args.seconds - time.monotonic()))
            arrived = time.monotonic()  # the segment's speech is here: from now on the user waits
            try:
                speech_windows = segment_windows(audio[k], args.mel == "lazy")  # in the render thread, as the backend
                before = time.monotonic() - arrived
                phases = render(audio[k], speech_windows, output)
            except Exception as e:  # reported with the results
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                return
            frames += frames_per_segment
            took = time.monotonic() - arrived
            rendering += took
            with lock:
                segments.append({"mel_s": before, **{f"{k}_s": before + v for k, v in phases.items()},
                                 "segment_s": took})
            os.unlink(output)
        streams[index] = {"start": started - origin, "end": time.monotonic() - origin, "frames": frames,
                          "rendering": rendering, "cpu_s": time.thread_time()}

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(count)]
    profile = CpuProfile() if args.profile else None
    with Sampler() as sampler:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    done = [s for s in streams if s]
    # Together: frames over the stream's wall time (its segments back to back). Staggered: over the time its
    # renders took (the waits for the next sentence are playback, not rendering).
    fps = [s["frames"] / (s["rendering"] if staggered else s["end"] - s["start"]) for s in done]
    wall = max(s["end"] for s in done) - min(s["start"] for s in done) if done else 0.0
    ready = sorted(s["ready_s"] for s in segments)
    encoded = sorted(s["encoded_s"] for s in segments)

    def pct(values: list[float], q: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")

    extra: dict[str, Any] = {}
    if segments:  # the median of each step of a segment's first frame, ms (those this renderer reports)
        steps = [k for k in ("mel_s", "setup_s", "launched_s", "ready_s", "encoded_s") if k in segments[0]]
        extra["first_frame_steps_ms_p50"] = {k[:-2]: pct(sorted(s[k] for s in segments), 0.5) for k in steps}
        extra["first_frame_steps_ms_p95"] = {k[:-2]: pct(sorted(s[k] for s in segments), 0.95) for k in steps}
        # The slowest twentieth of first frames: where their time went (mean of each step over them, ms).
        slow = sorted(segments, key=lambda s: s["ready_s"])[-max(1, len(segments) // 20):]
        extra["slowest_5pct_steps_ms_mean"] = {k[:-2]: round(1000 * statistics.mean(s[k] for s in slow), 1)
                                               for k in steps}
    if profile is not None:
        frames_done = max(1, sum(s["frames"] for s in done))
        extra["cpu_ms_per_frame"] = profile.per_frame(frames_done, sum(s["cpu_s"] for s in done))
        extra["cpu_ms_per_frame"]["machine (busy cores x wall)"] = round(
            1000 * sampler.busy_cores * sampler.seconds / frames_done, 3)
    return {
        "streams": count, "arrivals": arrivals, "completed": len(done), "errors": errors[:5],
        "frames": sum(s["frames"] for s in done),
        "wall_s": round(wall, 2), "total_fps": round(sum(s["frames"] for s in done) / max(wall, 1e-9), 1),
        "realtime_streams": sum(1 for f in fps if f >= FPS), "min_stream_fps": round(min(fps), 1) if fps else 0,
        "median_stream_fps": round(statistics.median(fps), 1) if fps else 0,
        "first_ready_ms": {"p50": pct(ready, 0.5), "p95": pct(ready, 0.95), "max": pct(ready, 1.0)},
        "first_encoded_ms": {"p50": pct(encoded, 0.5), "p95": pct(encoded, 0.95), "max": pct(encoded, 1.0)},
        "gpu_util_pct": sampler.gpu_util, "busy_cores": round(sampler.busy_cores, 1), **extra,
    }


def face_regions(net: torch.nn.Module, audio: list[np.ndarray]) -> list[np.ndarray]:
    """The pasted face regions (n, h, w, 3) uint8 of each speech's render, as the pooled pipeline makes them."""
    from workers.animation.wav2lip.face import face_input
    from workers.animation.wav2lip.torch_paste import PasteTarget

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = net.to(device)
    image = portrait()
    target = PasteTarget(image, FACE_BOX, feather_mask(FACE_BOX), 96, device)
    face = torch.from_numpy(face_input(image, FACE_BOX, 96)).to(device)
    regions = []
    with torch.inference_mode():
        for speech in audio:
            windows = torch.from_numpy(windows_of(speech)).to(device)
            out = net(windows, face.expand(len(windows), -1, -1, -1))
            regions.append(target.paste(out).cpu().numpy())
    return regions


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 8-bit planes (Gaussian window, sigma 1.5, Wang et al.'s constants)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim.mean())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def encode_bench(net: torch.nn.Module, args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    """The encoder pool alone on face-like frames, per x264 setting: frames per second, CPU per frame, quality.

    ``--videos`` videos of one segment each go through one ``EncoderPool`` at once (as fast as it
    encodes); then each seed's video is decoded and compared with the frames it was made of: PSNR and
    SSIM of the luma over the face box (the only part that changes) and PSNR over the whole frame.
    """
    import av

    from workers.animation.encoder_pool import EncoderPool, EncodeSpec

    audio = [speech_like(args.seconds, seed) for seed in range(8)]
    regions = face_regions(net, audio)
    image = portrait()
    box = (FACE_BOX.left, FACE_BOX.top, FACE_BOX.right, FACE_BOX.bottom)
    rows = []
    for config in args.x264:
        preset, _, tune = config.partition("/")
        pool = EncoderPool(args.encoders, opencv_threads=args.opencv_threads)

        def encode(videos: int, name: str) -> int:
            handles = []
            for v in range(videos):
                k = v % len(audio)
                spec = EncodeSpec(output=str(scratch / f"{name}-{v}.mp4"), image=image, box=box, fps=FPS,
                                  audio=audio[k], sample_rate=RATE, crf=20, preset=preset, tune=tune)
                handles.append((pool.open(spec, regions[k].shape[1:], len(regions[k]), args.frames_ahead), k))
            while any(not h.result.done() for h, _ in handles):
                for handle, k in handles:
                    end = min(len(regions[k]), handle.encoded + handle.ring.frames)
                    if end > handle.sent and not handle.result.done():
                        handle.write(handle.sent, regions[k][handle.sent:end])
                time.sleep(0.001)
            for handle, _ in handles:
                handle.result.result()
            return sum(len(regions[k]) for _, k in handles)

        encode(pool.size, "warm-up")  # every process started, its imports done, x264 loaded
        profile = CpuProfile()
        started = time.monotonic()
        frames = encode(args.videos, f"{preset}-{tune}")
        wall = time.monotonic() - started
        cpu = profile.per_frame(frames, 0.0)
        pool.close()
        quality: dict[str, list[float]] = {"psnr_face": [], "ssim_face": [], "psnr_frame": [], "kbit_s": []}
        left, top, right, bottom = box
        for k in range(min(len(audio), args.videos)):
            path = scratch / f"{preset}-{tune}-{k}.mp4"
            with av.open(str(path)) as container:
                # The Y plane as x264 got it and as it came out (no conversion on either side).
                decoded = [f.to_ndarray()[:image.shape[0]] for f in container.decode(video=0)]
            for frame, region in zip(decoded, regions[k]):
                source = image.copy()
                source[top:bottom, left:right] = region
                luma = cv2.cvtColor(source, cv2.COLOR_BGR2YUV_I420)[:image.shape[0]]
                quality["psnr_face"].append(_psnr(frame[top:bottom, left:right], luma[top:bottom, left:right]))
                quality["ssim_face"].append(_ssim(frame[top:bottom, left:right], luma[top:bottom, left:right]))
                quality["psnr_frame"].append(_psnr(frame, luma))
            quality["kbit_s"].append(path.stat().st_size * 8 / 1000 / (len(regions[k]) / FPS))
        row = {"x264": config, "videos": args.videos, "frames": frames, "wall_s": round(wall, 2),
               "fps": round(frames / wall, 1), "encoder_cpu_ms_per_frame": cpu,
               **{k: round(float(np.mean(v)), 4) for k, v in quality.items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _stat(path: str) -> tuple[int, int, float] | None:
    """(parent pid, threads, CPU seconds) from a /proc stat file; None when it is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[17]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuProfile:
    """CPU time over a run: this process by thread (Python's names) and its child processes (the encoders).

    Read from /proc (Linux): a thread's or process's user + system time at the start and the end.
    Threads that ended during the run (the stream threads) are counted from their own ``thread_time``.
    """

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _threads(pid: int | str) -> dict[int, float]:
        times = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = _stat(f"/proc/{pid}/task/{tid}/stat")
            if stat is not None:
                times[int(tid)] = stat[2]
        return times

    def _read(self) -> dict[str, Any]:
        me = os.getpid()
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _stat(f"/proc/{entry}/stat")
                if stat is not None and stat[0] == me:
                    children[int(entry)] = self._threads(entry)
        total = _stat(f"/proc/{me}/stat")
        return {"threads": self._threads(me), "children": children, "total": total[2] if total else 0.0}

    def per_frame(self, frames: int, stream_cpu: float) -> dict[str, float]:
        end = self._read()
        names = {t.native_id: t.name for t in threading.enumerate()}
        groups: dict[str, float] = {}

        def add(group: str, seconds: float) -> None:
            groups[group] = groups.get(group, 0.0) + seconds

        for tid, cpu in end["threads"].items():
            used = cpu - self._start["threads"].get(tid, 0.0)
            name = names.get(tid)
            if name is None:
                try:
                    with open(f"/proc/self/task/{tid}/comm") as f:
                        name = f"native {f.read().strip()}"
                except OSError:
                    name = "native ?"
            elif name.startswith("stream-"):
                continue  # counted below with the threads that ended
            add(f"render: {name}", used)
        add("render: stream threads (mel windows, render calls)", stream_cpu)
        add("render: process total", end["total"] - self._start["total"])
        encoders = {pid: t for pid, t in end["children"].items() if not ENCODER_PIDS or pid in ENCODER_PIDS}
        for pid, threads in end["children"].items():
            before = self._start["children"].get(pid, {})
            for tid, cpu in threads.items():
                if pid not in encoders:
                    add("mel processes", cpu - before.get(tid, 0.0))
                else:
                    add("encoders: main threads" if tid == pid else "encoders: other threads",
                        cpu - before.get(tid, 0.0))
        groups["encoders: processes"] = len(encoders)
        groups["encoders: threads per process (max)"] = max((len(t) for t in encoders.values()), default=0)
        return {k: (v if k.startswith("encoders: processes") or "(max)" in k else round(1000 * v / frames, 3))
                for k, v in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 64, 128, 160])
    parser.add_argument("--segments", type=int, default=2, help="sentence segments per stream, one after another")
    parser.add_argument("--seconds", type=float, default=4.0, help="speech per segment")
    parser.add_argument("--ramp", type=float, default=1.0,
                        help="together: streams start spread over this many seconds")
    parser.add_argument("--arrivals", nargs="+", choices=["together", "staggered"], default=["together"],
                        help="together: segments back to back, streams started within --ramp; staggered: streams "
                             "started over --stagger seconds, a stream's segments --seconds apart")
    parser.add_argument("--stagger", type=float, default=0.0,
                        help="staggered: streams start spread over this many seconds (0: --seconds)")
    parser.add_argument("--mel", choices=["lazy", "whole"], default="lazy",
                        help="lazy: the engine gets SegmentWindows (where this checkout has them); whole: every "
                             "window computed before the render")
    parser.add_argument("--mel-processes", type=int, default=2,
                        help="processes computing mel windows after the first batch (0: the render thread)")
    parser.add_argument("--setup-cache", type=int, default=64,
                        help="uploaded faces and paste targets the engine keeps (0: none, uploaded per render)")
    parser.add_argument("--mel-first-processes", type=int, default=4,
                        help="processes computing a render's first batch of mel windows (0: the render thread)")
    parser.add_argument("--setup-slots", type=int, default=2, help="renders that prepare at once (0: no limit)")
    parser.add_argument("--switch-ms", type=float, default=0.0,
                        help="the interpreter's GIL switch interval while the engine runs (0: the engine's default)")
    parser.add_argument("--pipeline", choices=["pooled", "threaded"], default="pooled")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--first-batch", type=int, default=8)
    parser.add_argument("--frames-ahead", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--poll-ms", type=float, default=4.0,
                        help="how often the feeder looks for ring room the encoders freed")
    parser.add_argument("--encoders", type=int, default=0, help="encoder processes (0: one per core)")
    parser.add_argument("--opencv-threads", type=int, default=1,
                        help="OpenCV threads per encoder process (0: OpenCV's default, one per core)")
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the videos")
    parser.add_argument("--tune", default="", help="x264 tune of the videos (e.g. zerolatency); none by default")
    parser.add_argument("--x264", nargs="+", default=[], metavar="PRESET[/TUNE]",
                        help="instead of streams: the encoder pool alone at each x264 setting (time, size, quality)")
    parser.add_argument("--videos", type=int, default=64, help="--x264: videos encoded at once")
    parser.add_argument("--profile", action="store_true",
                        help="CPU ms per frame by thread of this process and by encoder process (from /proc)")
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
    if args.x264:
        with tempfile.TemporaryDirectory(prefix="bench-x264-") as folder:
            rows = encode_bench(net, args, Path(folder))
        print(f"\nencoder pool alone on {os.cpu_count()} cores, {args.videos} videos of {args.seconds:g} s at once, "
              f"face-like 512 px frames, CRF 20")
        print(f"{'x264':>24} {'fps':>7} {'CPU ms/frame':>12} {'kbit/s':>7} {'PSNR face':>9} {'SSIM face':>9} "
              f"{'PSNR frame':>10}")
        for r in rows:
            cpu = r["encoder_cpu_ms_per_frame"]
            used = cpu.get("encoders: main threads", 0.0) + cpu.get("encoders: other threads", 0.0)
            print(f"{r['x264']:>24} {r['fps']:>7.0f} {used:>12.2f} {r['kbit_s']:>7.0f} {r['psnr_face']:>9.2f} "
                  f"{r['ssim_face']:>9.4f} {r['psnr_frame']:>10.2f}")
        out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"x264{args.tag}.json").write_text(json.dumps({"device": device, "cores": os.cpu_count(),
                                                              "args": vars(args), "rows": rows}, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        scratch = Path(folder)
        make = pooled_renderer if args.pipeline == "pooled" else threaded_renderer
        render, close = make(net, scratch, args)
        try:
            run_streams(render, 2, argparse.Namespace(**{**vars(args), "segments": 1}), scratch)  # warm-up
            for arrivals in args.arrivals:
                for count in args.streams:
                    row = run_streams(render, count, args, scratch, arrivals)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            close()
    lazy = args.mel == "lazy" and SegmentWindows is not None
    print(f"\n{args.pipeline} pipeline on {device}, {os.cpu_count()} cores; {args.segments} segments of "
          f"{args.seconds:g} s per stream, 512 px portrait, {args.content} content, batch {args.batch_size}, "
          f"mel windows {'lazy' if lazy else 'whole'}")
    print(f"{'arrivals':>9} {'streams':>7} {'total fps':>9} {'real-time':>9} {'min fps':>7} "
          f"{'first frame ms p50/p95/max':>27} {'encoded ms p50/p95/max':>23} {'GPU %':>5} {'cores':>5}")
    for r in rows:
        ready, enc = r["first_ready_ms"], r["first_encoded_ms"]
        gpu = "-" if r["gpu_util_pct"] is None else f"{r['gpu_util_pct']:.0f}"
        print(f"{r['arrivals']:>9} {r['streams']:>7} {r['total_fps']:>9.0f} {r['realtime_streams']:>9} "
              f"{r['min_stream_fps']:>7.1f} {ready['p50']:>9.0f}/{ready['p95']:.0f}/{ready['max']:.0f} "
              f"{enc['p50']:>9.0f}/{enc['p95']:.0f}/{enc['max']:.0f} {gpu:>5} {r['busy_cores']:>5.1f}")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"streams-{args.pipeline}{args.tag}.json"
    target.write_text(json.dumps({"device": device, "cores": os.cpu_count(), "torch": torch.__version__,
                                  "args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
