"""Frames per second of the landmark animator on one CPU core, and the share of portrait preparation.

    .venv/bin/python -m bench.animation [--runs 3] [--seconds 4]

The process is pinned to CPU 0 with OpenMP, OpenCV and x264 limited to one thread,
so the numbers are per core. For each size (the repo portrait resized to N x N and
``Settings(animation={"max_side": N})``) a clip of Piper speech is rendered
``--runs`` times, encoding included, and the median is reported; portrait
preparation (decode, scale, face detection, landmarks) is timed on its own, which
is what caching the prepared portrait would save per render. Results are written
to bench/results/animation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

SIZES = (256, 512, 1024)
SENTENCE = "Hello there. It is lovely to see you again, and I hope you had a wonderful day."
RESULTS = Path(__file__).parent / "results" / "animation.json"
PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "portrait.png"


def pin_to_one_core() -> None:
    """Run on CPU 0 only, with every thread pool at one thread (before numpy and cv2 load)."""
    os.sched_setaffinity(0, {0})
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[name] = "1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the speech clip")
    args = parser.parse_args()
    pin_to_one_core()

    # Imported after pinning so that their thread pools start with one thread.
    import cv2
    import numpy as np

    from workers.animation.backends.landmark import LandmarkAnimator, LandmarkOptions
    from workers.animation.base import RenderRequest
    from workers.animation.portrait import FaceModels, prepare_portrait
    from workers.animation.prepare import landmark_model_path
    from workers.models import prepare_models
    from workers.settings import AnimationSettings, Settings
    from workers.tts.base import registry as tts_registry

    cv2.setNumThreads(1)
    settings = Settings()
    prepare_models(settings, ["tts", "animation"])
    speech = tts_registry.create("piper", settings).synthesize(SENTENCE)
    samples = int(args.seconds * speech.sample_rate)
    audio = np.zeros(samples, np.float32)
    audio[: min(samples, len(speech.samples))] = speech.samples[:samples]
    faces = FaceModels(landmark_model_path(settings.model_dir))  # to time preparation on its own
    photo = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if photo is None:
        raise SystemExit(f"cannot read {PORTRAIT}")

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-animation-") as scratch:
        for size in SIZES:
            interpolation = cv2.INTER_AREA if size < max(photo.shape[:2]) else cv2.INTER_CUBIC
            ok, png = cv2.imencode(".png", cv2.resize(photo, (size, size), interpolation=interpolation))
            if not ok:
                raise SystemExit(f"cannot encode the {size} px portrait")
            data = png.tobytes()
            sized = Settings(animation=AnimationSettings(max_side=size))
            animator = LandmarkAnimator(sized, LandmarkOptions(encoder_threads=1))
            started = time.perf_counter()
            animator.load()
            load_s = time.perf_counter() - started

            prepare_times, render_times = [], []
            frames = width = height = 0
            for run in range(args.runs):
                started = time.perf_counter()
                prepare_portrait(data, size, faces)
                prepare_times.append(time.perf_counter() - started)
                request = RenderRequest(portrait=data, audio=audio, sample_rate=speech.sample_rate,
                                        output=Path(scratch) / f"{size}-{run}.mp4")
                started = time.perf_counter()
                result = animator.render(request)
                render_times.append(time.perf_counter() - started)
                frames, width, height = result.frames, result.width, result.height
            render_s = statistics.median(render_times)
            prepare_s = statistics.median(prepare_times)
            rows.append({
                "max_side": size,
                "width": width,
                "height": height,
                "frames": frames,
                "render_s": round(render_s, 3),
                "fps": round(frames / render_s, 2),
                "prepare_s": round(prepare_s, 3),
                "prepare_share": round(prepare_s / render_s, 4),
                "fps_with_cached_preparation": round(frames / max(render_s - prepare_s, 1e-9), 2),
                "load_s": round(load_s, 3),
                "runs": args.runs,
            })

    print(f"landmark animator, 1 CPU core, {args.seconds:.1f} s clip at {settings.animation.fps} fps, "
          f"median of {args.runs} runs (encoding included)")
    print(f"{'size':>9} {'frames':>6} {'render s':>9} {'fps':>7} {'prepare s':>10} {'prep %':>7} {'fps cached':>11}")
    for row in rows:
        print(f"{row['width']:>4}x{row['height']:<4} {row['frames']:>6} {row['render_s']:>9.3f} {row['fps']:>7.2f} "
              f"{row['prepare_s']:>10.3f} {100 * row['prepare_share']:>6.1f}% "
              f"{row['fps_with_cached_preparation']:>11.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "cpu_cores": 1,
        "clip_seconds": args.seconds,
        "fps_target": settings.animation.fps,
        "rows": rows,
    }, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
