"""Frames per second of the landmark animator on one CPU core, and what the portrait preparation cache saves.

    .venv/bin/python -m bench.animation [--runs 3] [--seconds 4]

The process is pinned to CPU 0 with OpenMP, OpenCV and x264 limited to one thread,
so the numbers are per core. For each size (the repo portrait resized to N x N and
``max_side`` N) a clip of Piper speech is rendered ``--runs`` times with the
phoneme timings (the speak-mode path), encoding included, and the median is
reported; the preparation is already cached then, as it is for every job after a
portrait's first.

Portrait preparation (decode at render size, face detection, 68 landmarks) is
timed three ways: computed (a portrait's first job), read from the cache folder
(a later job in another worker process) and from a preparer's memory (a later job
in the same process). It is measured on the N x N portraits and on a 12-megapixel
JPEG photo, where decoding costs most. Results go to bench/results/animation.json.
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

SIZES = (256, 512, 1024)
SENTENCE = "Hello there. It is lovely to see you again, and I hope you had a wonderful day."
RESULTS = Path(__file__).parent / "results" / "animation.json"
PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "portrait.png"


def pin_to_one_core() -> None:
    """Run on CPU 0 only, with every thread pool at one thread (before numpy and cv2 load)."""
    os.sched_setaffinity(0, {0})
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[name] = "1"


def median_time(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the speech clip")
    args = parser.parse_args()
    pin_to_one_core()

    # Imported after pinning so that their thread pools start with one thread.
    import cv2
    import numpy as np

    from contracts.settings import AnimationSettings, Settings
    from contracts.timings import Timing
    from pipeline.stages import prepare_models
    from workers.animation.backends.landmark import LandmarkAnimator, LandmarkOptions
    from workers.animation.base import RenderRequest
    from workers.animation.encoder import EncoderOptions
    from workers.animation.faces import FaceChecks, FaceModels
    from workers.animation.portrait_cache import PortraitCache, PortraitPreparer
    from workers.animation.prepare import landmark_model_path
    from workers.tts.base import registry as tts_registry

    cv2.setNumThreads(1)
    settings = Settings()
    prepare_models(settings, ["tts", "animation"])
    speech = tts_registry.create("piper", settings).synthesize(SENTENCE)
    samples = int(args.seconds * speech.sample_rate)
    audio = np.zeros(samples, np.float32)
    audio[: min(samples, len(speech.samples))] = speech.samples[:samples]
    timings = tuple(t for t in speech.timings if t.start < args.seconds)
    timings = tuple(Timing(t.start, min(t.end, args.seconds), t.label, t.kind) for t in timings)
    faces = FaceModels(landmark_model_path(settings.model_dir))
    photo = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if photo is None:
        raise SystemExit(f"cannot read {PORTRAIT}")

    def preparation(data: bytes, max_side: int, folder: Path) -> dict[str, float]:
        """Seconds to prepare ``data``: computed, from the cache folder, from memory."""
        def fresh(memory: int) -> PortraitPreparer:
            return PortraitPreparer(faces, max_side, FaceChecks(min_face_px=32), PortraitCache(folder),
                                    memory_entries=memory)

        def computed() -> None:
            for stale in folder.rglob("*.npz"):
                stale.unlink()
            fresh(0).prepare(data)

        computed_s = median_time(computed, args.runs)
        fresh(0).prepare(data)  # leave the entry in the folder
        folder_s = median_time(lambda: fresh(0).prepare(data), args.runs)
        warm = fresh(1)
        warm.prepare(data)
        memory_s = median_time(lambda: warm.prepare(data), args.runs)
        return {"prepare_s": round(computed_s, 4), "prepare_cached_file_s": round(folder_s, 4),
                "prepare_cached_memory_s": round(memory_s, 4), "prepare_saved_s": round(computed_s - folder_s, 4)}

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-animation-") as scratch:
        root = Path(scratch)
        for size in SIZES:
            interpolation = cv2.INTER_AREA if size < max(photo.shape[:2]) else cv2.INTER_CUBIC
            ok, png = cv2.imencode(".png", cv2.resize(photo, (size, size), interpolation=interpolation))
            if not ok:
                raise SystemExit(f"cannot encode the {size} px portrait")
            data = png.tobytes()
            # The face is 43 px across at 256: below the default minimum, allowed here to time the size.
            sized = Settings(data_dir=root / f"data-{size}",
                             animation=AnimationSettings(max_side=size, min_face_px=32))
            animator = LandmarkAnimator(sized, LandmarkOptions(encoder=EncoderOptions(threads=1)))
            started = time.perf_counter()
            animator.load()
            load_s = time.perf_counter() - started

            outputs = iter(range(1000))

            def render() -> Any:
                return animator.render(RenderRequest(
                    portrait=data, audio=audio, sample_rate=speech.sample_rate, text=SENTENCE, timings=timings,
                    output=root / f"{size}-{next(outputs)}.mp4"))

            started = time.perf_counter()
            result = render()  # the first job: preparation computed
            first_s = time.perf_counter() - started
            render_s = median_time(render, args.runs)
            rows.append({
                "photo": f"{size}x{size} png", "width": result.width, "height": result.height,
                "frames": result.frames, "first_render_s": round(first_s, 3), "render_s": round(render_s, 3),
                "fps": round(result.frames / render_s, 2), "load_s": round(load_s, 3), "runs": args.runs,
                **preparation(data, size, root / f"prep-{size}"),
            })

        # A 12-megapixel camera JPEG: the portrait in the middle of a larger scene.
        canvas = cv2.resize(photo, (3000, 3000), interpolation=cv2.INTER_CUBIC)
        camera = cv2.copyMakeBorder(canvas, 0, 0, 500, 500, cv2.BORDER_REFLECT)
        ok, jpeg = cv2.imencode(".jpg", camera, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise SystemExit("cannot encode the camera photo")
        big = preparation(jpeg.tobytes(), settings.animation.max_side, root / "prep-camera")
        rows.append({"photo": f"{camera.shape[1]}x{camera.shape[0]} jpeg", "max_side": settings.animation.max_side,
                     **big})

    print(f"landmark animator, 1 CPU core, {args.seconds:.1f} s clip at {settings.animation.fps} fps, "
          f"median of {args.runs} runs (phoneme timings, encoding included, preparation cached)")
    print(f"{'size':>9} {'frames':>6} {'render s':>9} {'fps':>7} {'first job s':>12}")
    for row in rows:
        if "fps" in row:
            print(f"{row['width']:>4}x{row['height']:<4} {row['frames']:>6} {row['render_s']:>9.3f} "
                  f"{row['fps']:>7.1f} {row['first_render_s']:>12.3f}")
    print("\nportrait preparation, median seconds")
    print(f"{'photo':>16} {'computed':>9} {'cache file':>11} {'memory':>8} {'saved':>7}")
    for row in rows:
        print(f"{row['photo']:>16} {row['prepare_s']:>9.4f} {row['prepare_cached_file_s']:>11.4f} "
              f"{row['prepare_cached_memory_s']:>8.4f} {row['prepare_saved_s']:>7.4f}")
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
