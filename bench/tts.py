"""Real-time factor and latency of the TTS backends on short, medium and long texts.

    .venv/bin/python -m bench.tts [--runs 3] [--backends piper,flite,coqui]

Backends: Piper and flite, and coqui when coqui-tts imports and
``TALKFARM_TTS__COQUI__MODEL`` names a model folder. For each backend and each
text (about 2 s, 5 s and 15 s of speech) the backend is warmed up once, then
timed ``--runs`` times through the stage's whole pipeline (the spoken-text front
end, the cut into sentences and pauses, synthesis per piece, trimming, resampling
to ``tts.sample_rate``, loudness normalisation, timings; no phrase cache); the
table shows medians. The
real-time factor is synthesis time / audio time (below 1: faster than real time).
"First sentence" is the time to speak only the first sentence of the long text,
what a streaming reply waits before its first audio. Results are written
to bench/results/tts.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

from contracts.settings import Settings
from contracts.text.sentences import split_sentences
from pipeline.stages import prepare_models
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry

BACKENDS = ("piper", "flite", "coqui")
# Texts that Piper's joe voice speaks in about 2, 5 and 15 seconds (flite speaks a little faster).
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
RESULTS = Path(__file__).parent / "results"


def first_sentence(text: str) -> str:
    return split_sentences(text)[0]


def available(name: str, settings: Settings) -> bool:
    """Piper and flite always; coqui when it imports and a model folder is configured."""
    if name != "coqui":
        return True
    return importlib.util.find_spec("TTS") is not None and bool(settings.tts.coqui.model)


def timed(backend: TTSBackend, text: str, runs: int) -> tuple[float, float]:
    """Median seconds of ``runs`` syntheses of ``text`` and the seconds of audio it gives."""
    backend.synthesize(text)  # warm-up
    times, audio = [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        speech = backend.synthesize(text)
        times.append(time.perf_counter() - start)
        audio = speech.seconds
    return statistics.median(times), audio


def bench_backend(name: str, settings: Settings, runs: int) -> list[dict[str, Any]]:
    backend = tts_registry.create(name, settings)
    start = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - start
    rows = []
    for label, text in TEXTS.items():
        latency, audio = timed(backend, text, runs)
        rows.append({
            "backend": name, "text": label, "chars": len(text), "audio_s": round(audio, 2),
            "latency_s": round(latency, 4), "rtf": round(latency / audio, 4), "load_s": round(load_s, 3),
        })
    sentence = first_sentence(TEXTS["15s"])
    latency, audio = timed(backend, sentence, runs)
    rows.append({
        "backend": name, "text": "15s first sentence", "chars": len(sentence), "audio_s": round(audio, 2),
        "latency_s": round(latency, 4), "rtf": round(latency / audio, 4), "load_s": round(load_s, 3),
    })
    backend.unload()
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"sample rate {Settings().tts.sample_rate} Hz; medians")
    print(f"{'backend':<8} {'text':<20} {'chars':>5} {'audio s':>8} {'latency s':>10} {'RTF':>7}")
    for row in rows:
        print(f"{row['backend']:<8} {row['text']:<20} {row['chars']:>5} {row['audio_s']:>8.2f} "
              f"{row['latency_s']:>10.3f} {row['rtf']:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backend names")
    args = parser.parse_args()

    settings = Settings()
    prepare_models(settings, ["tts"])
    names = [name for name in args.backends.split(",") if name]
    skipped = [name for name in names if not available(name, settings)]
    if skipped:
        print(f"skipping {', '.join(skipped)}: coqui-tts does not import or TALKFARM_TTS__COQUI__MODEL is empty")
    rows = [row for name in names if name not in skipped for row in bench_backend(name, settings, args.runs)]
    print_table(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tts.json").write_text(json.dumps(
        {"runs": args.runs, "sample_rate": settings.tts.sample_rate, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
