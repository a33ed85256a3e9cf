"""Cost of the spoken-text front end (contracts.text.to_spoken) per sentence, English and Mandarin.

    .venv/bin/python -m bench.text_frontend [--runs 2000]

Each sentence is normalised ``--runs`` times after a warm-up; the table shows the
median and the 95th percentile in microseconds per call, by kind of sentence
(plain, full of numbers, dates and prices, full of Markdown, mixed languages),
and the median of all the TTS stage reads of a sentence before any backend runs
("stage µs": ``to_spoken``, the cut into phrases at sentence ends and pauses, the
runs of one language; ``workers.tts.speaking``). The front end runs once per
segment before TTS, so the figure to compare is the first-segment latency of a
``speak`` job (about 0.4 s, BENCHMARKS.md). Also timed: what the coordinator does
at submit of the six-sentence ``speak`` text of ``bench.pipeline`` (the checks,
the cut into segments, the spoken text). The time to import the package
(num2words, cn2an and markdown-it-py included) is printed too: a worker pays it
once, at start. Results are written to bench/results/text_frontend.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from bench.pipeline import SPEAK
from contracts.text.spoken import Spoken, speech_sentences, to_spoken
from workers.tts.speaking import phrases

FIRST_SEGMENT_S = 0.4
SENTENCES = {
    ("en", "plain"): [
        "Good morning, how are you doing today?",
        "The weather is lovely today, so we are going for a long walk in the park after lunch.",
        "I would love to go back there next year with the whole family.",
    ],
    ("en", "numbers"): [
        "Dr. Smith paid $3.50 on 1/2/2025 at 10:30 a.m.",
        "The 1990s saw a 25% rise, from 1,200 to 1,500 km of road and 72 °F summers.",
        "Call (555) 123-4567 or visit https://example.com/a?b=c before March 3rd.",
    ],
    ("en", "markdown"): [
        "**Sure!** Here are the steps: 1. Open the door… 2. Walk in 😀",
        "## Tips\n\n- Use `pip install` *first*\n- See [the docs](https://example.com/docs)",
        "> Be kind — always. | Name | Age |",
    ],
    ("zh", "plain"): [
        "今天天气很好，我们下午去公园散步吧。",
        "我明年还想和全家人一起再去那里看看。",
        "谢谢你的帮助，我们明天见。",
    ],
    ("zh", "numbers"): [
        "我在2025年1月2日花了¥20，打电话13800138000。",
        "会议10:30开始，增长了3.5%，气温-5°C，跑了5km。",
        "第1名有2个人，价格是3.50元到100元。",
    ],
    ("zh", "mixed"): [
        "我喜欢iPhone 15和MacBook，价格是$3.50……真的！",
        "请发邮件到hi@example.com，谢谢😀",
        "**你好**，我们用Python写代码。",
    ],
}
RESULTS = Path(__file__).parent / "results"


def time_calls(call: Callable[[], object], runs: int) -> list[float]:
    """Microseconds of each of ``runs`` calls of ``call`` after one warm-up."""
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def stage_reading(text: str, language: str) -> None:
    """What the TTS stage reads of a sentence before a backend runs (``workers.tts.speaking.say``)."""
    spoken = to_spoken(text, language)
    for phrase, _ in phrases(spoken, 0.25):
        Spoken(phrase, spoken.language).spans()


def submit_reading(text: str) -> None:
    """What the coordinator reads of a streamed ``speak`` text at submit (``coordinator.admission``, ``.jobs``)."""
    to_spoken(text, "en")
    " ".join(to_spoken(part, "en").text for part in speech_sentences(text, "en"))


def import_seconds() -> float:
    """Seconds a fresh interpreter takes to import the front end and say one sentence."""
    code = ("import time; t = time.perf_counter(); from contracts.text.spoken import to_spoken; "
            "to_spoken('It costs $3.50 on 1/2/2025.'); to_spoken('花了3.5元', 'zh'); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=120)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for (language, kind), sentences in SENTENCES.items():
        times = sorted(t for s in sentences for t in time_calls(lambda: to_spoken(s, language), args.runs))
        stage = [t for s in sentences for t in time_calls(lambda: stage_reading(s, language), args.runs)]
        rows.append({
            "language": language, "kind": kind, "sentences": len(sentences),
            "chars": round(statistics.mean(len(s) for s in sentences)),
            "median_us": round(statistics.median(times), 1), "p95_us": round(times[int(0.95 * len(times))], 1),
            "stage_median_us": round(statistics.median(stage), 1),
        })
    submit_us = statistics.median(time_calls(lambda: submit_reading(SPEAK[6].format(name="Anna")), args.runs // 10))
    cold = import_seconds()
    print(f"{args.runs} runs per sentence; microseconds per call")
    print(f"{'language':<8} {'kind':<9} {'chars':>5} {'median µs':>10} {'p95 µs':>8} {'stage µs':>9} {'of 0.4 s':>9}")
    for row in rows:
        share = row["stage_median_us"] / 1e6 / FIRST_SEGMENT_S
        print(f"{row['language']:<8} {row['kind']:<9} {row['chars']:>5} {row['median_us']:>10.1f} "
              f"{row['p95_us']:>8.1f} {row['stage_median_us']:>9.1f} {share:>9.3%}")
    print(f"coordinator, submit of the six-sentence speak text: {submit_us:.0f} µs")
    print(f"import and first two calls in a fresh process: {cold:.3f} s (once per worker)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "text_frontend.json").write_text(json.dumps(
        {"runs": args.runs, "import_and_first_calls_s": round(cold, 4), "speak_submit_us": round(submit_us, 1),
         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
