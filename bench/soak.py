"""Soak: N clients submit jobs for M minutes; every accepted job must end, none lost, none stuck.

    .venv/bin/python -m bench.soak --clients 20 --minutes 10 [--backends standin|embedded]
                                   [--database sqlite|postgresql] [--concurrency N]

Starts the farm as separate processes on private services (``bench.farm_up``:
the coordinator and one worker per stage, a private RabbitMQ node and Redis
instances, the job store in SQLite or a new PostgreSQL database). The backends are
the instant stand-ins of ``bench.standins`` (the farm's own cost) or the embedded models.

Each client submits one job at a time, in turn: a streamed ``speak``, a typed
``chat``, a spoken ``chat`` (all four stages), a ``lipsync``, and a repeat of the
client's first sentence (a cache hit), and waits for it to end. When the time is
up, every accepted job is read again until it has ended or the grace period
passes. Reported: accepted, refused by code, succeeded, failed by code, lost (the
store does not know an accepted job), stuck (not ended), latencies, and each
process's resident memory (with its children) at start, after the first minute
(warmed up), at the end and at its peak. Written to ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
import zlib
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Self

import numpy as np

from bench.farm_up import BENCH_TIER, start_farm
from contracts.audio import wav_bytes
from contracts.settings import Settings
from tests.conftest import DATA
from tests.faults.farm import FaultFarm
from tests.faults.jobs import await_jobs, submit
from workers.tts.base import TTSBackend
from workers.tts.base import registry as tts_registry

KINDS = ("speak", "chat_text", "chat_audio", "lipsync", "repeat")
JOB_TIMEOUT = 300.0  # a client waits this long for one job before it moves on (the job stays counted)
MIB = 1024 * 1024


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    accepted: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    lock: threading.Lock = field(default_factory=threading.Lock)


def tone_speech(text: str, seconds: float, rate: int = 16_000) -> bytes:
    """A WAV of a tone with a syllable rhythm, its pitch drawn from ``text`` (so no two are the same file):
    speech enough for admission and the stand-in ASR."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + zlib.crc32(text.encode()) % 200
    samples = 0.3 * np.sin(2 * np.pi * pitch * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return wav_bytes(samples.astype(np.float32), rate)


@lru_cache(maxsize=1)
def _tts() -> TTSBackend:
    settings = Settings()
    return tts_registry.create(settings.tts.backend, settings)


def model_speech(text: str, seconds: float) -> bytes:
    """``text`` spoken by the embedded TTS backend (runs on the embedded models; ``seconds`` is ignored)."""
    speech = _tts().synthesize(text)
    return wav_bytes(speech.samples, speech.sample_rate)


def requests_of(client_no: int, speech: Callable[[str, float], bytes]) -> Callable[[int, str], dict[str, Any]]:
    """The form (and audio) of a client's ``n``th job of a kind."""
    def request(n: int, kind: str) -> dict[str, Any]:
        tag = f"{client_no} {n}"
        if kind == "speak":
            return {"mode": "speak", "text": f"Client {tag} says hello. This is a soak test."}
        if kind == "chat_text":
            return {"mode": "chat", "text": f"Client {tag} asks: what is the weather like?"}
        if kind == "chat_audio":
            return {"mode": "chat", "audio": speech(f"Question {tag}, what time is it?", 1.0 + (n % 20) / 10)}
        if kind == "lipsync":
            return {"mode": "lipsync", "audio": speech(f"Lip sync {tag}.", 0.8 + (n % 10) / 10)}
        return {"mode": "speak", "text": f"Client {client_no} repeats the same sentence."}

    return request


def run_client(client_no: int, farm: FaultFarm, token: str, portrait: bytes, until: float, tally: Tally,
               speech: Callable[[str, float], bytes]) -> None:
    request = requests_of(client_no, speech)
    with farm.client(timeout=60, token=token) as client:
        for n in itertools.count():
            if time.monotonic() >= until:
                return
            kind = KINDS[(n + client_no) % len(KINDS)]
            form = request(n, kind)
            started = time.monotonic()
            answer = submit(client, portrait, **form)
            if not answer.accepted:
                with tally.lock:
                    tally.refused[f"{answer.status} {answer.code}"] += 1
                time.sleep(0.5)  # refused (backlog, outage): back off before the next one
                continue
            with tally.lock:
                tally.accepted.append(answer.job_id)
            report = await_jobs(client, [answer.job_id], JOB_TIMEOUT, interval=0.2)
            if report.statuses().get("succeeded"):
                with tally.lock:
                    tally.latency[kind].append(time.monotonic() - started)


class MemoryWatch:
    """Samples the farm's resident memory every ``every`` seconds in a thread."""

    def __init__(self, farm: FaultFarm, every: float = 15.0) -> None:
        self.farm = farm
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def sample(self) -> dict[str, int]:
        memory = self.farm.memory()
        self.samples.append({"t": round(time.monotonic() - self._started, 1), **memory})
        return memory

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self) -> dict[str, int]:
        """Each process's largest sample."""
        names = [key for key in self.samples[0] if key != "t"]
        return {name: max(int(s[name]) for s in self.samples) for name in names}

    def after(self, seconds: float) -> dict[str, int]:
        """The first sample taken ``seconds`` or more after the start (the last one if none was)."""
        sample = next((s for s in self.samples if s["t"] >= seconds), self.samples[-1])
        return {name: int(size) for name, size in sample.items() if name != "t"}


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"n": len(values), "p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3), "max": round(ordered[-1], 3)}


def print_table(result: dict[str, Any]) -> None:
    run, jobs = result["run"], result["jobs"]
    print(f"\nsoak: {run['clients']} clients, {run['minutes']} min, {run['backends']} backends, {run['database']}, "
          f"{run['cpus']} CPUs, load {run['load_before'][0]:.1f} -> {run['load_after'][0]:.1f}")
    print(f"  accepted {jobs['accepted']}, refused {jobs['refused']}")
    print(f"  succeeded {jobs['succeeded']}, failed {jobs['failed_by_code']}, cancelled {jobs['cancelled']}")
    print(f"  lost {jobs['lost']}   stuck {jobs['stuck']}   ({result['throughput_jobs_per_s']} jobs/s ended)")
    print(f"\n  {'latency s':<12} {'n':>6} {'p50':>7} {'p95':>7} {'max':>7}")
    for kind, p in result["latency_s"].items():
        print(f"  {kind:<12} {p['n']:>6} {p['p50'] or 0:>7.2f} {p['p95'] or 0:>7.2f} {p['max'] or 0:>7.2f}")
    memory = result["memory_mib"]
    print(f"\n  {'RSS MiB':<18}" + "".join(f"{column:>9}" for column in memory))
    for name in memory["start"]:
        print(f"  {name:<18}" + "".join(f"{memory[column][name]:>9.1f}" for column in memory))


def soak(args: argparse.Namespace, tmp: Path, stack: ExitStack) -> dict[str, Any]:
    farm = start_farm(stack, tmp, args.backends, args.database, args.concurrency)
    speech = tone_speech if args.backends == "standin" else model_speech
    portrait = (DATA / "portrait.png").read_bytes()
    tally = Tally()
    token = farm.create_key("soak", BENCH_TIER)  # the clients' quotas do not refuse the run
    load_before = os.getloadavg()
    with MemoryWatch(farm) as watch:
        start_memory = watch.sample()
        started = time.monotonic()
        until = started + args.minutes * 60
        clients = [threading.Thread(target=run_client, args=(i, farm, token, portrait, until, tally, speech))
                   for i in range(args.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        with farm.client(token=token) as client:  # the jobs are the soak key's: another key would not see them
            report = await_jobs(client, tally.accepted, args.grace, interval=0.5)
        elapsed = time.monotonic() - started
        end_memory = watch.sample()
    statuses = report.statuses()
    return {
        "run": {"clients": args.clients, "minutes": args.minutes, "backends": args.backends,
                "database": args.database, "concurrency": args.concurrency or "settings", "seconds": round(elapsed, 1),
                # The machine is shared: its load (1, 5, 15 minutes) before and after says how much.
                "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "jobs": {"accepted": len(tally.accepted), "refused": dict(tally.refused),
                 "succeeded": statuses.get("succeeded", 0), "failed_by_code": dict(report.failure_codes()),
                 "cancelled": statuses.get("cancelled", 0), "lost": len(report.lost), "stuck": len(report.stuck),
                 "lost_ids": report.lost, "stuck_ids": report.stuck},
        "throughput_jobs_per_s": round(sum(statuses.values()) / elapsed, 2),
        "latency_s": {kind: percentiles(values) for kind, values in tally.latency.items()},
        "memory_mib": {name: {proc: round(size / MIB, 1) for proc, size in sizes.items()}
                       for name, sizes in (("start", start_memory), ("1 min", watch.after(60)),
                                           ("end", end_memory), ("peak", watch.peak()))},
        "memory_samples": watch.samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backends", choices=("standin", "embedded"), default="standin")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=0, help="processes per worker (0: the settings')")
    parser.add_argument("--grace", type=float, default=300.0, help="seconds to wait for the last jobs to end")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="talkfarm-soak-") as tmp, ExitStack() as stack:
        result = soak(args, Path(tmp), stack)
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {args.output}")
    return 0 if result["jobs"]["lost"] == 0 and result["jobs"]["stuck"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
