"""A load run: a farm, Locust users ramping up against it, and the report (``python -m bench.load.run``).

    python -m bench.load.run --backends standin --users 100 --spawn-rate 10 --minutes 3 --out docs/load/standin-100
    python -m bench.load.run --backends embedded --users 10 --spawn-rate 2 --minutes 4 --out docs/load/embedded-10

Starts a whole farm on private services (``bench.farm_up``) with the stand-in
backends (the farm's own limits: coordinator, broker, stores, hand-on) or the
embedded models (what the models allow), makes API keys of the ``bench`` tier whose
quotas do not refuse the run, and runs ``locust --headless`` with the users of
``bench.load.scenario`` for the given time while a thread samples the queue depths
every second. Users still following a job at the end are given ``--grace`` seconds
to finish; then every accepted job is looked up in the job store until it has ended
(or the grace has passed): *lost* is a job the store does not know, *stuck* one not
ended. The report goes to ``--out``: ``summary.json``, ``jobs.csv``, ``queues.csv``,
``latency.csv``, ``errors.csv``, Locust's own CSVs (``locust_*.csv``), and
``latency.png``, ``throughput.png``, ``queues.png``; a table is printed. The exit
status is 1 when a job was lost or stuck.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import select

from bench.farm_up import BACKENDS, BENCH_TIER, DATABASES, start_farm
from bench.load.plots import write_plots
from bench.load.queues import QueueSampler
from bench.load.report import print_table, read_records, server_submits, summarize, write_csv
from coordinator.store.models import JobRow
from coordinator.store.repo import TERMINAL, make_engine
from pipeline.stages import STAGE_NAMES
from tests.conftest import DATA, fresh_portrait
from tests.faults.farm import FaultFarm

SCENARIO = Path(__file__).with_name("scenario.py")
PORTRAIT_VARIANTS = 8


def farm_settings(args: argparse.Namespace) -> dict[str, str]:
    """The run's settings on top of the tests' limits: the coordinator's shape, the workers' priority."""
    return {"TALKFARM_COORDINATOR__WORKERS": str(args.coordinator_workers),
            "TALKFARM_COORDINATOR__BACKGROUND": args.background,
            "TALKFARM_COORDINATOR__PUBLISH_AFTER_ANSWER": str(args.publish == "after-answer").lower(),
            **{f"TALKFARM_{stage.upper()}__NICE": str(args.worker_nice) for stage in STAGE_NAMES}}


def check_store(farm: FaultFarm, job_ids: Sequence[str], grace: float) -> dict[str, Any]:
    """Every accepted job looked up in the store until all have ended or ``grace`` has passed."""
    engine = make_engine(farm.settings.db_url)
    wanted = set(job_ids)
    deadline = time.monotonic() + grace
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(JobRow.id, JobRow.status, JobRow.error_code)).all()
            found = {row.id: row for row in rows if row.id in wanted}
            open_ = [job_id for job_id, row in found.items() if row.status not in TERMINAL]
            if not open_ or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
    finally:
        engine.dispose()
    by_status: dict[str, int] = {}
    failed: dict[str, int] = {}
    for row in found.values():
        by_status[row.status] = by_status.get(row.status, 0) + 1
        if row.status == "failed":
            failed[row.error_code or "-"] = failed.get(row.error_code or "-", 0) + 1
    lost = sorted(wanted - set(found))
    return {"accepted": len(wanted), "in_store": len(rows), "by_status": by_status, "failed_by_code": failed,
            "lost": len(lost), "stuck": len(open_), "lost_ids": lost, "stuck_ids": sorted(open_)}


def run_locust(args: argparse.Namespace, url: str, config: dict[str, Any], out: Path) -> int:
    env = {**os.environ, "BENCH_LOAD_CONFIG": json.dumps(config)}
    command = [sys.executable, "-m", "locust", "-f", str(SCENARIO), "--headless", "--host", url,
               "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
               "--run-time", f"{int(args.minutes * 60)}s", "--stop-timeout", str(int(args.job_timeout)),
               "--csv", str(out / "locust"), "--only-summary", "--loglevel", "WARNING"]
    return subprocess.run(command, env=env, cwd=Path(__file__).resolve().parents[2]).returncode


def ramp(users: int, spawn_rate: float, seconds: float) -> list[tuple[float, int]]:
    """Users running over the run, a point a second (Locust's linear ramp)."""
    return [(float(t), min(users, int(spawn_rate * t))) for t in range(int(seconds) + 1)]


def load_run(args: argparse.Namespace, farm: FaultFarm, tmp: Path) -> dict[str, Any]:
    """Locust's users against ``farm`` as ``args`` say, the store check, and the report in ``args.out``."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tokens = [farm.create_key(f"load-{i}", BENCH_TIER) for i in range(args.keys)]
    portraits = []
    source = (DATA / "portrait.png").read_bytes()
    for i in range(PORTRAIT_VARIANTS):
        path = tmp / f"portrait-{i}.png"
        path.write_bytes(fresh_portrait(source))
        portraits.append(str(path))
    records = tmp / "records.jsonl"
    config = {"tokens": tokens, "records": str(records), "portraits": portraits, "think": args.think,
              "chat_share": args.chat_share, "fresh_share": args.fresh_share, "follow": args.follow,
              "job_timeout": args.job_timeout}
    load_before = os.getloadavg()
    with QueueSampler(farm.settings) as sampler:
        started = time.time()
        status = run_locust(args, farm.url, config, out)
        with farm.client() as client:  # the coordinator's own view of the submits, before the farm goes
            metrics = client.get("/metrics")
        server = server_submits(metrics.text) if metrics.status_code == 200 else None
        jobs, others = read_records(records)
        store = check_store(farm, [job.job_id for job in jobs if job.accepted and job.job_id], args.grace)
        seconds = time.time() - started
    settings = farm.settings.coordinator
    run = {"command": args.command, "users": args.users, "spawn_rate": args.spawn_rate, "minutes": args.minutes,
           "backends": args.backends, "database": args.database, "follow": args.follow, "think_s": args.think,
           "chat_share": args.chat_share, "fresh_share": args.fresh_share,
           "coordinator": f"{settings.workers} process(es), background {settings.background}, publish "
                          f"{'after' if settings.publish_after_answer else 'before'} answer",
           "seconds": round(seconds, 1), "locust_exit": status,
           # The machine is shared: its load (1, 5, 15 minutes) before and after says how much.
           "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
           "load_after": [round(x, 2) for x in os.getloadavg()]}
    summary = summarize(jobs, others, sampler.samples, store, run, server)
    write_csv(out, jobs, sampler.samples, summary)
    write_plots(out, jobs, sampler.samples, started, seconds, ramp(args.users, args.spawn_rate, seconds), run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", choices=BACKENDS, default="standin")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second")
    p.add_argument("--minutes", type=float, default=1.0, help="how long the users run")
    p.add_argument("--out", type=Path, required=True, help="the report's folder")
    p.add_argument("--think", type=float, nargs=2, default=[2.0, 5.0], metavar=("MIN", "MAX"),
                   help="seconds a user waits between jobs (uniform)")
    p.add_argument("--chat-share", type=float, default=0.5, help="share of chat jobs (the rest: speak)")
    p.add_argument("--fresh-share", type=float, default=0.1,
                   help="share of submits that upload the portrait again instead of naming the avatar")
    p.add_argument("--follow", choices=("sse", "poll"), default="sse")
    p.add_argument("--keys", type=int, default=4, help="API keys of the load tier, handed to users in turn")
    p.add_argument("--coordinator-workers", type=int, default=2, help="uvicorn processes (coordinator.workers)")
    p.add_argument("--background", choices=("inline", "separate"), default="separate",
                   help="where worker events are applied (coordinator.background)")
    p.add_argument("--publish", choices=("before-answer", "after-answer"), default="after-answer",
                   help="when a submit publishes its job (coordinator.publish_after_answer)")
    p.add_argument("--worker-nice", type=int, default=10,
                   help="the stage workers' nice value (<STAGE>.nice): the coordinator's answers go first")
    p.add_argument("--database", choices=DATABASES, default="sqlite")
    p.add_argument("--concurrency", type=int, default=0, help="processes per stage worker (0: the settings')")
    p.add_argument("--job-timeout", type=float, default=300.0, help="seconds a user follows one job")
    p.add_argument("--grace", type=float, default=300.0, help="seconds for the last jobs to end in the store")
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments, with ``command``: the command line that gives them (for the report)."""
    args = parser().parse_args(argv)
    args.command = shlex.join(["python", "-m", "bench.load.run", *argv])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    with tempfile.TemporaryDirectory(prefix="talkfarm-load-") as tmp, ExitStack() as stack:
        farm = start_farm(stack, Path(tmp), args.backends, args.database, args.concurrency, farm_settings(args))
        summary = load_run(args, farm, Path(tmp))
    print_table(summary)
    print(f"\nreport in {args.out}")
    store = summary["jobs"]["store"]
    return 0 if store["lost"] == 0 and store["stuck"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
