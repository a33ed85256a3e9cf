"""Time to first token, tokens per second and the batching gain of the transformers LLM backend.

    .venv/bin/python -m bench.llm [--max-new-tokens 32] [--concurrency 1 4 8]

On the embedded SmolLM2-135M with the default LLM settings (CPU, greedy). Eight
different chat questions are first answered one at a time (no batching): each
request's time to first token (TTFT, from the call to the first streamed text),
its tokens per second and its total time. Then, for each concurrency C, the
first C questions are sent at once from C threads to a backend whose batcher
generates up to C requests together (``llm.max_batch_size = C``), as a worker
run with ``--pool threads --concurrency C`` would. The gain is the one-at-a-time
time of those C requests divided by the wall time of serving them together
(equivalently, the ratio of the two throughputs in tokens per second). Greedy
decoding makes both runs produce the same tokens; the bench checks that.

Results are written to bench/results/llm.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.gpu_stages import concurrent
from contracts.payload import Turn
from contracts.settings import Settings
from workers.llm.backends.transformers_llm import TransformersLLM
from workers.llm.base import GenerationOptions
from workers.llm.prepare import prepare
from workers.llm.text import build_messages

RESULTS = Path(__file__).parent / "results"
QUESTIONS = (
    "Can you give me a tip for sleeping better?",
    "What is the capital of France?",
    "How are you today?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "Tell me something interesting about octopuses.",
    "How do I stay focused while working from home?",
    "What is a good way to start learning to play the guitar?",
)


def backend(settings: Settings, batch: int) -> TransformersLLM:
    llm = settings.llm.model_copy(update={"max_batch_size": batch, "batch_window_ms": 50.0})
    model = TransformersLLM(settings.model_copy(update={"llm": llm}))
    model.load()
    return model


def timed_reply(model: TransformersLLM, messages: list[Turn], options: GenerationOptions) -> dict[str, Any]:
    """One request: its text, time to first token, total time and new tokens."""
    start = time.perf_counter()
    first: float | None = None
    parts = []
    for delta in model.stream(messages, options):
        if first is None:
            first = time.perf_counter() - start
        parts.append(delta)
    total = time.perf_counter() - start
    stats = model.last_stats
    tokens = stats.new_tokens if stats is not None else 0
    return {"text": "".join(parts), "ttft_s": first if first is not None else total, "total_s": total,
            "tokens": tokens, "batch_size": stats.batch_size if stats is not None else 1}


def one_at_a_time(model: TransformersLLM, prompts: list[list[Turn]],
                  options: GenerationOptions) -> list[dict[str, Any]]:
    return [timed_reply(model, p, options) for p in prompts]


def together(model: TransformersLLM, prompts: list[list[Turn]], options: GenerationOptions) -> tuple[float, list[dict]]:
    """All prompts at once, one thread each; wall time and each request's figures."""
    wall, per_thread = concurrent(lambda i: timed_reply(model, prompts[i], options), len(prompts), 1)
    return wall, [calls[0] for calls in per_thread]


def summary(label: str, concurrency: int, wall: float, runs: list[dict[str, Any]], baseline_s: float) -> dict:
    tokens = sum(r["tokens"] for r in runs)
    return {
        "mode": label, "concurrency": concurrency, "requests": len(runs), "wall_s": round(wall, 3),
        "tokens": tokens, "tokens_per_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_mean_s": round(statistics.mean(r["ttft_s"] for r in runs), 3),
        "ttft_p50_s": round(statistics.median(r["ttft_s"] for r in runs), 3),
        "request_tokens_per_s": round(statistics.mean(r["tokens"] / r["total_s"] for r in runs), 2),
        "largest_batch": max(r["batch_size"] for r in runs),
        "gain": round(baseline_s / wall, 2) if wall > 0 else 0.0,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'mode':<14} {'conc':>4} {'wall s':>8} {'tokens':>7} {'tok/s':>7} {'TTFT mean':>10} "
          f"{'TTFT p50':>9} {'req tok/s':>9} {'batch':>5} {'gain':>6}")
    for r in rows:
        print(f"{r['mode']:<14} {r['concurrency']:>4} {r['wall_s']:>8.2f} {r['tokens']:>7} {r['tokens_per_s']:>7.2f} "
              f"{r['ttft_mean_s']:>10.3f} {r['ttft_p50_s']:>9.3f} {r['request_tokens_per_s']:>9.2f} "
              f"{r['largest_batch']:>5} {r['gain']:>5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()

    settings = Settings()
    prepare(settings)
    options = GenerationOptions(max_new_tokens=args.max_new_tokens)
    count = max(args.concurrency)
    prompts = [build_messages(settings.llm.system_prompt, [], QUESTIONS[i % len(QUESTIONS)], 6) for i in range(count)]

    single = backend(settings, 1)
    timed_reply(single, prompts[0], GenerationOptions(max_new_tokens=4))  # warm-up
    alone = one_at_a_time(single, prompts, options)
    single.unload()

    rows = []
    for concurrency in args.concurrency:
        first = alone[:concurrency]
        baseline = sum(r["total_s"] for r in first)
        rows.append(summary("one-at-a-time", concurrency, baseline, first, baseline))
        batched = backend(settings, concurrency)
        timed_reply(batched, prompts[0], GenerationOptions(max_new_tokens=4))  # warm-up
        wall, runs = together(batched, prompts[:concurrency], options)
        batched.unload()
        same = [a["text"] for a in first] == [r["text"] for r in runs]
        rows.append({**summary("batched", concurrency, wall, runs, baseline), "same_text": same})
    print_table(rows)
    if not all(r.get("same_text", True) for r in rows):
        print("note: some batched replies differ from the one-at-a-time ones (padding changes float sums)")
    RESULTS.mkdir(exist_ok=True)
    llm = settings.llm
    (RESULTS / "llm.json").write_text(json.dumps({
        "model": llm.model, "device": llm.device, "torch_threads": llm.torch_threads,
        "max_new_tokens": args.max_new_tokens, "questions": list(QUESTIONS[:count]), "rows": rows,
        "one_at_a_time": alone,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
