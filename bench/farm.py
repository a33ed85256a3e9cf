"""Per-stage and end-to-end time of chat jobs on the real farm, and the time of a cache hit.

    .venv/bin/python -m bench.farm [--runs 3]

Starts a private farm (as the tests do), asks spoken questions of about five
seconds (made with the TTS stage) in chat mode, and prints medians. Results are
written to bench/results/farm.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from contracts.audio import wav_bytes
from contracts.settings import Settings
from pipeline.stages import STAGE_NAMES as STAGES
from pipeline.stages import prepare_models
from tests.conftest import DATA, FARM_LIMITS
from tests.farm import farm_fixture
from workers.tts.base import registry as tts_registry

QUESTIONS = [
    "Good afternoon. Could you please tell me what your favourite season of the year is, and why?",
    "Hello there. I would really like to know which city you would most like to visit next summer.",
    "Hi. If you could learn any musical instrument at all, which one would you choose to play and why?",
    "Good morning. What kind of food do you like to cook at home when friends come over for dinner?",
    "Hey. Can you tell me about a book or a film that you enjoyed a lot during the last few months?",
]


def wait(client: httpx.Client, job_id: str) -> dict:
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    settings = Settings()
    prepare_models(settings)
    tts = tts_registry.create("piper", settings)
    questions = []
    for text in QUESTIONS[: args.runs]:
        speech = tts.synthesize(text)
        questions.append((wav_bytes(speech.samples, speech.sample_rate), speech.seconds))
    portrait = (DATA / "portrait.png").read_bytes()

    rows: list[dict] = []
    hits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        farm_iter = farm_fixture(Path(tmp), FARM_LIMITS)
        farm = next(farm_iter)
        try:
            with farm.client(timeout=600) as client:
                for audio, seconds in questions:
                    files = {"portrait": ("p.png", portrait), "audio": ("q.wav", audio)}
                    start = time.perf_counter()
                    answer = client.post("/v1/jobs", data={"mode": "chat"}, files=files).json()
                    job = wait(client, answer["job_id"])
                    total = time.perf_counter() - start
                    assert job["status"] == "succeeded", job["error"]
                    row = {"question_s": round(seconds, 2), "total_s": round(total, 3),
                           "reply_s": job["speech_seconds"]}
                    row.update({s["stage"]: s["seconds"] for s in job["stages"]})
                    rows.append(row)

                    start = time.perf_counter()
                    again = client.post("/v1/jobs", data={"mode": "chat"}, files=files).json()
                    client.get(f"/v1/jobs/{again['job_id']}/video").raise_for_status()
                    hits.append(time.perf_counter() - start)
                    assert again["cached"]
        finally:
            next(farm_iter, None)

    print(f"{'question s':>10} {'reply s':>8} " + " ".join(f"{s:>10}" for s in STAGES) + f" {'total s':>8}")
    for row in rows:
        print(f"{row['question_s']:>10} {row['reply_s']:>8} "
              + " ".join(f"{row[s]:>10.2f}" for s in STAGES) + f" {row['total_s']:>8.2f}")
    medians = {key: round(statistics.median(r[key] for r in rows), 3)
               for key in (*STAGES, "total_s", "question_s", "reply_s")}
    medians["cache_hit_s"] = round(statistics.median(hits), 3)
    print("median:", json.dumps(medians))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "farm.json").write_text(json.dumps({"runs": rows, "cache_hits_s": hits, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
