"""Real-time factor and latency of the Whisper models on short, medium and long questions.

    .venv/bin/python -m bench.asr [--runs 3]

The inputs (about 2 s, 5 s and 15 s) are the texts of ``bench.tts`` spoken by
Piper, passed through a WAV file and decoded to 16 kHz as uploads are. For each
model (``whisper-base``, ``whisper-tiny.en``, with the default ASR settings
otherwise: CPU, int8, beam 1) every input is transcribed once to warm up, then
``--runs`` times; the table shows medians. The real-time factor is
transcription time / audio time. Results are written to bench/results/asr.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from bench.tts import RESULTS, TEXTS
from workers.asr.base import SAMPLE_RATE
from workers.asr.base import registry as asr_registry
from workers.audio import decode_audio, wav_bytes
from workers.models import prepare_models
from workers.settings import Settings
from workers.tts.base import registry as tts_registry

MODELS = ("whisper-base", "whisper-tiny.en")


def spoken_inputs(settings: Settings) -> dict[str, np.ndarray]:
    """Each bench text spoken by Piper at 16 kHz."""
    tts = tts_registry.create("piper", settings)
    inputs = {}
    for label, text in TEXTS.items():
        speech = tts.synthesize(text)
        inputs[label] = decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE)
    tts.unload()
    return inputs


def bench_model(model: str, settings: Settings, inputs: dict[str, np.ndarray], runs: int) -> list[dict[str, Any]]:
    model_settings = settings.model_copy(update={"asr": settings.asr.model_copy(update={"model": model})})
    asr = asr_registry.create(model_settings.asr.backend, model_settings)
    start = time.perf_counter()
    asr.load()
    load_s = time.perf_counter() - start
    rows = []
    for label, audio in inputs.items():
        asr.transcribe(audio, "en")  # warm-up
        times, text = [], ""
        for _ in range(runs):
            start = time.perf_counter()
            text = asr.transcribe(audio, "en").text
            times.append(time.perf_counter() - start)
        latency, seconds = statistics.median(times), len(audio) / SAMPLE_RATE
        rows.append({
            "model": model, "input": label, "audio_s": round(seconds, 2), "latency_s": round(latency, 4),
            "rtf": round(latency / seconds, 4), "load_s": round(load_s, 3), "text": text,
        })
    asr.unload()
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<16} {'input':<6} {'audio s':>8} {'latency s':>10} {'RTF':>7}")
    for row in rows:
        print(f"{row['model']:<16} {row['input']:<6} {row['audio_s']:>8.2f} "
              f"{row['latency_s']:>10.3f} {row['rtf']:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    settings = Settings()
    prepare_models(settings, ["asr", "tts"])
    inputs = spoken_inputs(settings)
    rows = [row for model in MODELS for row in bench_model(model, settings, inputs, args.runs)]
    print_table(rows)
    options = settings.asr
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "asr.json").write_text(json.dumps({
        "runs": args.runs,
        "settings": {"backend": options.backend, "device": options.device, "compute_type": options.compute_type,
                     "beam_size": options.beam_size, "cpu_threads": options.cpu_threads},
        "rows": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
