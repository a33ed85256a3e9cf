"""Real-time factor and latency of the ASR backend on short, medium and long questions.

    .venv/bin/python -m bench.asr [--runs 3] [--language en]

The inputs (about 2 s, 5 s and 15 s) are spoken by Piper, passed through a WAV
file and decoded to 16 kHz as uploads are. Each configuration (``whisper-base``
and ``whisper-tiny.en``, each sequential and batched, with the ASR settings of
the environment otherwise: device and compute type ``auto``, beam 1) transcribes
every input once to warm up, then ``--runs`` times; the table shows medians.
Latency is the whole ``transcribe`` call: VAD, language detection (unless
``--language`` forces it; tiny.en is English only) and decoding. The
real-time factor is latency / audio seconds. "CPU s" is the process's CPU time
per call (all threads): on a busy machine it moves far less than latency does, so
compare it when the load average is above the core count. Results go to
bench/results/asr.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from contracts.audio import decode_audio, wav_bytes
from contracts.settings import Settings
from pipeline.stages import prepare_models
from workers.asr.base import SAMPLE_RATE, ASRBackend
from workers.asr.base import registry as asr_registry
from workers.tts.base import registry as tts_registry

RESULTS = Path(__file__).parent / "results"
TEXTS = {
    "2s": "Good morning, how are you doing today?",
    "5s": "The weather is lovely today, so we are going for a long walk in the park after lunch.",
    "15s": (
        "Last summer we drove along the coast for three days and stopped in every small town we passed. "
        "The beaches were quiet in the morning, and in the evening we ate fresh fish by the harbour. "
        "I would love to go back there next year with the whole family, "
        "and perhaps stay for a week or two in a little house near the sea."
    ),
}
CONFIGS = [
    {"model": "whisper-base", "batched": False},
    {"model": "whisper-base", "batched": True},
    {"model": "whisper-tiny.en", "batched": False},
    {"model": "whisper-tiny.en", "batched": True},
]


def spoken_inputs(settings: Settings) -> dict[str, np.ndarray]:
    """Each bench text spoken by Piper at 16 kHz."""
    tts = tts_registry.create("piper", settings)
    inputs = {}
    for label, text in TEXTS.items():
        speech = tts.synthesize(text)
        inputs[label] = decode_audio(wav_bytes(speech.samples, speech.sample_rate), SAMPLE_RATE)
    tts.unload()
    return inputs


def bench_config(config: dict[str, Any], settings: Settings, inputs: dict[str, np.ndarray], runs: int,
                 language: str | None) -> list[dict[str, Any]]:
    asr: ASRBackend = asr_registry.create(
        settings.asr.backend, settings.model_copy(update={"asr": settings.asr.model_copy(update=config)})
    )
    start = time.perf_counter()
    asr.load()
    load_s = time.perf_counter() - start
    rows = []
    for label, audio in inputs.items():
        asr.transcribe(audio, language)  # warm-up
        times, cpu_times, text = [], [], ""
        for _ in range(runs):
            start, cpu_start = time.perf_counter(), time.process_time()
            text = asr.transcribe(audio, language).text
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        latency, seconds = statistics.median(times), len(audio) / SAMPLE_RATE
        rows.append({
            **config, "device": getattr(asr, "device", ""), "compute_type": getattr(asr, "compute_type", ""),
            "input": label, "audio_s": round(seconds, 2), "latency_s": round(latency, 4),
            "rtf": round(latency / seconds, 4),
            "cpu_s": round(statistics.median(cpu_times), 4), "load_s": round(load_s, 3), "text": text,
        })
    asr.unload()
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<16} {'batched':<8} {'device':<12} {'input':<6} {'audio s':>8} {'latency s':>10} {'RTF':>7}"
          f" {'CPU s':>7}")
    for row in rows:
        device = f"{row['device']}/{row['compute_type']}"
        print(f"{row['model']:<16} {str(row['batched']).lower():<8} {device:<12} {row['input']:<6} "
              f"{row['audio_s']:>8.2f} {row['latency_s']:>10.3f} {row['rtf']:>7.3f} {row['cpu_s']:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--language", default=None, help="force this language (default: detect it)")
    args = parser.parse_args()

    settings = Settings()
    prepare_models(settings, ["asr", "tts"])
    inputs = spoken_inputs(settings)
    rows = [row for config in CONFIGS for row in bench_config(config, settings, inputs, args.runs, args.language)]
    print_table(rows)
    options = settings.asr
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "asr.json").write_text(json.dumps({
        "runs": args.runs,
        "language": args.language or "detected",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "settings": {"backend": options.backend, "device": options.device, "compute_type": options.compute_type,
                     "beam_size": options.beam_size, "cpu_threads": options.cpu_threads,
                     "batch_size": options.batch_size},
        "rows": rows,
    }, indent=2) + "\n")
    print(f"results written to {RESULTS / 'asr.json'}")


if __name__ == "__main__":
    main()
