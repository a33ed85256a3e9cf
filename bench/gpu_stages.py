"""ASR and LLM throughput on a GPU at several numbers of concurrent requests, through the stages' own backends.

    python -m bench.gpu_stages [--concurrency 1 8 32] [--asr-model DIR] [--llm-model DIR]

**ASR**: ``FasterWhisperASR`` on CUDA, float16, the batched pipeline, with
``asr.num_workers`` equal to the concurrency (CTranslate2 runs that many transcriptions
at once). Every request is the same 7.1 s spoken question (``bench/data``, flite, 16 kHz),
VAD included. **LLM**: ``TransformersLLM`` on CUDA (bfloat16) with
``llm.max_batch_size`` equal to the concurrency (its batcher generates the waiting
requests as one batch), greedy, ``--max-new-tokens`` per reply, streamed.

C requests are sent at once from C threads, ``--rounds`` times one after another; the
figures are requests per second, audio seconds per second (ASR) or generated tokens per
second (LLM), and the median and 95th-percentile latency of a request (time to first
token, for the LLM). The GPU machine reaches no hub and the repo's real models are too
large to carry there, so by default both models have **random weights** of the real
architectures, built here: Whisper base (74 M parameters, converted to CTranslate2
float16; its tokenizer and config from the embedded ``whisper-base``) and SmolLM2-135M
(from the embedded model's config and tokenizer). A random Whisper never ends a
transcript, so its decoding is capped at ``--asr-tokens`` new tokens per window (about
what a 7 s question needs); a random LLM generates all ``--max-new-tokens``. Name real
model folders to measure those instead. Results go to ``$OUT/gpu_stages.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any, Callable

import numpy as np

from contracts.settings import Settings

QUESTION = Path(__file__).parent / "data" / "question_16k.wav"


def question() -> np.ndarray:
    with wave.open(str(QUESTION)) as source:
        frames = source.readframes(source.getnframes())
    return np.frombuffer(frames, np.int16).astype(np.float32) / 32768


def random_whisper(folder: Path, source: Path) -> Path:
    """Whisper base with random weights, converted to CTranslate2 float16; config and tokenizer from ``source``."""
    import ctranslate2
    import transformers

    config = transformers.WhisperConfig(
        vocab_size=51865, num_mel_bins=80, encoder_layers=6, encoder_attention_heads=8, decoder_layers=6,
        decoder_attention_heads=8, d_model=512, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        max_source_positions=1500, max_target_positions=448)
    hf = folder / "whisper-hf"
    transformers.WhisperForConditionalGeneration(config).save_pretrained(hf)
    transformers.PreTrainedTokenizerFast(tokenizer_file=str(source / "tokenizer.json")).save_pretrained(hf)
    out = folder / "whisper-random"
    ctranslate2.converters.TransformersConverter(str(hf)).convert(str(out), quantization="float16")
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(source / name, out / name)
    return out


def random_llm(folder: Path, source: Path) -> Path:
    """SmolLM2-135M's architecture with random weights; config and tokenizer from ``source``."""
    import torch
    import transformers

    out = folder / "llm-random"
    out.mkdir()
    for item in source.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy(item, out / item.name)
    torch.manual_seed(0)
    config = transformers.AutoConfig.from_pretrained(out)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


def concurrent(call: Callable[[int], dict[str, Any]], concurrency: int,
               rounds: int) -> tuple[float, list[list[dict[str, Any]]]]:
    """``concurrency`` threads, each making ``rounds`` calls one after another, all starting at once.

    Returns the wall time and, per thread, its calls' figures in order.
    """
    results: list[list[dict[str, Any]]] = [[] for _ in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            results[index].append(call(index))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def bench_asr(settings: Settings, model: Path, levels: list[int], rounds: int, tokens: int,
              device: str) -> list[dict]:
    from workers.asr.backends.faster_whisper import FasterWhisperASR

    audio = question()
    seconds = len(audio) / 16000
    rows = []
    for concurrency in levels:
        asr_settings = settings.asr.model_copy(update={
            "model": str(model), "device": device, "compute_type": "float16" if device == "cuda" else "int8",
            "batched": True,
            "num_workers": concurrency})
        backend = FasterWhisperASR(settings.model_copy(update={"asr": asr_settings}))
        backend.load()
        if tokens:  # random weights never end a transcript: cap each window's decoding
            pipeline = backend._pipeline
            assert pipeline is not None
            setattr(pipeline, "transcribe", functools.partial(pipeline.transcribe, max_new_tokens=tokens))
        backend.transcribe(audio, "en")  # warm-up

        def call(index: int) -> dict[str, float]:
            started = time.perf_counter()
            backend.transcribe(audio, "en")
            return {"latency_s": time.perf_counter() - started}

        wall, per_thread = concurrent(call, concurrency, rounds)
        results = [r for thread in per_thread for r in thread]
        latencies = [r["latency_s"] for r in results]
        row = {"stage": "asr", "concurrency": concurrency, "requests": len(results), "wall_s": round(wall, 2),
               "requests_per_s": round(len(results) / wall, 2),
               "audio_s_per_s": round(len(results) * seconds / wall, 1),
               "latency_p50_s": pct(latencies, 0.5), "latency_p95_s": pct(latencies, 0.95)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        backend.unload()
    return rows


def bench_llm(settings: Settings, model: Path, levels: list[int], rounds: int, max_new_tokens: int,
              device: str) -> list[dict]:
    from workers.llm.backends.transformers_llm import TransformersLLM
    from workers.llm.base import GenerationOptions
    from workers.llm.text import build_messages

    questions = ["What is the capital of France?", "How do I sleep better?", "Why is the sky blue?",
                 "What should I cook tonight?"]
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    rows = []
    for concurrency in levels:
        llm_settings = settings.llm.model_copy(update={
            "model": str(model), "device": device, "dtype": "auto", "max_batch_size": concurrency,
            "batch_window_ms": 20.0})
        backend = TransformersLLM(settings.model_copy(update={"llm": llm_settings}))
        backend.load()
        prompts = [build_messages(settings.llm.system_prompt, [], questions[i % len(questions)], 6)
                   for i in range(concurrency)]
        list(backend.stream(prompts[0], GenerationOptions(max_new_tokens=4)))  # warm-up

        def call(index: int) -> dict[str, float]:
            started = time.perf_counter()
            first = 0.0
            for _ in backend.stream(prompts[index], options):
                if not first:
                    first = time.perf_counter() - started
            stats = backend.last_stats
            return {"ttft_s": first, "total_s": time.perf_counter() - started,
                    "tokens": float(stats.new_tokens if stats else 0), "batch": float(stats.batch_size if stats else 1)}

        wall, per_thread = concurrent(call, concurrency, rounds)
        results = [r for thread in per_thread for r in thread]
        tokens = sum(r["tokens"] for r in results)
        row = {"stage": "llm", "concurrency": concurrency, "requests": len(results), "wall_s": round(wall, 2),
               "requests_per_s": round(len(results) / wall, 2), "tokens_per_s": round(tokens / wall, 1),
               "tokens_per_request": round(tokens / len(results), 1),
               "largest_batch": int(max(r["batch"] for r in results)),
               "ttft_p50_s": pct([r["ttft_s"] for r in results], 0.5),
               "latency_p50_s": pct([r["total_s"] for r in results], 0.5),
               "latency_p95_s": pct([r["total_s"] for r in results], 0.95)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        backend.unload()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3, help="requests each thread makes, one after another")
    parser.add_argument("--asr-model", type=Path, help="a CTranslate2 Whisper folder (default: random weights)")
    parser.add_argument("--asr-source", type=Path, help="where the random Whisper's config and tokenizer come from "
                        "(default: the embedded whisper-base)")
    parser.add_argument("--asr-tokens", type=int, default=32, help="new tokens per window (0: the model decides)")
    parser.add_argument("--llm-model", type=Path, help="a transformers model folder (default: random weights)")
    parser.add_argument("--llm-source", type=Path, help="config and tokenizer of the random LLM "
                        "(default: the embedded smollm2-135m-instruct)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--skip", choices=["asr", "llm"], action="append", default=[])
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to try the bench on a machine without a GPU")
    args = parser.parse_args()

    import torch

    settings = Settings()
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-stages-") as folder:
        scratch = Path(folder)
        if "asr" not in args.skip:
            source = args.asr_source or settings.model_dir / "whisper-base"
            asr_model = args.asr_model or random_whisper(scratch, source)
            rows += bench_asr(settings, asr_model, args.concurrency, args.rounds,
                              0 if args.asr_model else args.asr_tokens, args.device)
        if "llm" not in args.skip:
            llm_model = args.llm_model or random_llm(scratch, args.llm_source
                                                     or settings.model_dir / "smollm2-135m-instruct")
            rows += bench_llm(settings, llm_model, args.concurrency, args.rounds, args.max_new_tokens, args.device)
    print(f"\non {name}, {os.cpu_count()} cores")
    for row in rows:
        if row["stage"] == "asr":
            print(f"asr C={row['concurrency']:>2}: {row['requests_per_s']:>7.2f} req/s, "
                  f"{row['audio_s_per_s']:>7.1f} audio s/s, latency p50 {row['latency_p50_s']:.3f} s "
                  f"p95 {row['latency_p95_s']:.3f} s")
        else:
            print(f"llm C={row['concurrency']:>2}: {row['requests_per_s']:>7.2f} req/s, {row['tokens_per_s']:>8.1f} "
                  f"tok/s, TTFT p50 {row['ttft_p50_s']:.3f} s, latency p50 {row['latency_p50_s']:.3f} s "
                  f"p95 {row['latency_p95_s']:.3f} s, largest batch {row['largest_batch']}")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / "gpu_stages.json"
    target.write_text(json.dumps({"device": name, "args": {k: str(v) for k, v in vars(args).items()},
                                  "rows": rows}, indent=2) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
