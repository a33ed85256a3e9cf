"""Time to first segment and time to final video, with sentence streaming on and off, on the real farm.

    .venv/bin/python -m bench.pipeline [--runs 3] [--modes speak,chat]

Starts a private farm (as the tests do; phrase, ASR and FAQ caches off so that
no run is served from an earlier one), then for ``speak`` requests of 1, 3 and 6
sentences and ``chat`` questions that ask for 1, 3 and 6 sentences measures,
from the client's submit:

* first segment: when the first segment is listed on the job (streaming on), or
  when the final video is ready (streaming off: nothing plays before it);
* final video: when the job has succeeded (the MP4 is assembled).

Every run uses different words (a name changes), so the render caches never hit.
Prints medians and the streaming gain, and writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from contracts.settings import Settings
from pipeline.stages import prepare_models
from tests.conftest import DATA, FARM_LIMITS
from tests.farm import farm_fixture

NAMES = ["Anna", "Boris", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines"]
SPEAK = {
    1: "Hello {name}, it is lovely to see you here today.",
    3: ("Hello {name}, it is lovely to see you here today. The weather outside is bright and warm. "
        "Let us take a short walk by the river."),
    6: ("Hello {name}, it is lovely to see you here today. The weather outside is bright and warm. "
        "Let us take a short walk by the river. We can stop at the little bakery on the corner. "
        "They make the best cinnamon rolls in town. Afterwards we will head home before it gets dark."),
}
CHAT = {
    1: "My name is {name}. In one short sentence, what is the capital of France?",
    3: "My name is {name}. Describe a sunny day at the beach in three short sentences.",
    6: "My name is {name}. Tell me six short facts about the Moon, one sentence each.",
}
FARM_ENV = {
    **FARM_LIMITS,
    "TALKFARM_TTS__PHRASE_CACHE_TTL_SECONDS": "0",
    "TALKFARM_ASR__CACHE_TTL_SECONDS": "0",
    "TALKFARM_LLM__MAX_NEW_TOKENS": "160",
}


def run_once(client: httpx.Client, portrait: bytes, mode: str, text: str, stream: bool) -> dict:
    start = time.perf_counter()
    answer = client.post("/v1/jobs", data={"mode": mode, "text": text, "stream": str(stream).lower()},
                         files={"portrait": ("p.png", portrait)})
    answer.raise_for_status()
    job_id = answer.json()["job_id"]
    first = None
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        now = time.perf_counter() - start
        if first is None and job.get("segments"):
            first = now
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.02)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
    final = now
    return {"first_segment_s": round(first if first is not None else final, 3), "final_video_s": round(final, 3),
            "segments": len(job.get("segments") or []) or None, "video_s": job["video_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="speak,chat", help="comma-separated: speak, chat")
    args = parser.parse_args()
    prepare_models(Settings())
    portrait = (DATA / "portrait.png").read_bytes()

    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        farm_iter = farm_fixture(Path(tmp), FARM_ENV)
        farm = next(farm_iter)
        try:
            with farm.client(timeout=600) as client:
                run_once(client, portrait, "speak", "Warming up the farm.", True)  # first-use costs out of the way
                name_index = 0
                modes = args.modes.split(",")
                for mode, texts in (("speak", SPEAK), ("chat", CHAT)):
                    if mode not in modes:
                        continue
                    for sentences, template in texts.items():
                        for stream in (True, False):
                            runs = []
                            for _ in range(args.runs):
                                text = template.format(name=NAMES[name_index % len(NAMES)])
                                name_index += 1
                                runs.append(run_once(client, portrait, mode, text, stream))
                            row = {"mode": mode, "sentences": sentences, "stream": stream, "runs": runs}
                            for key in ("first_segment_s", "final_video_s", "video_s"):
                                row[key] = round(statistics.median(r[key] for r in runs), 3)
                            row["segments"] = statistics.median(r["segments"] or 0 for r in runs) if stream else None
                            results.append(row)
                            print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
        finally:
            next(farm_iter, None)

    print()
    print(f"{'mode':<6} {'asked':>5} {'segments':>8} {'video s':>8} {'first, streamed':>16} "
          f"{'first, whole':>13} {'gain':>6} {'final, streamed':>16} {'final, whole':>13}")
    for on in (r for r in results if r["stream"]):
        off = next(r for r in results if not r["stream"] and r["mode"] == on["mode"]
                   and r["sentences"] == on["sentences"])
        gain = off["first_segment_s"] / on["first_segment_s"]
        on["gain"] = round(gain, 2)
        print(f"{on['mode']:<6} {on['sentences']:>5} {on['segments']:>8} {on['video_s']:>8.2f} "
              f"{on['first_segment_s']:>16.2f} {off['first_segment_s']:>13.2f} {gain:>5.1f}x "
              f"{on['final_video_s']:>16.2f} {off['final_video_s']:>13.2f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
