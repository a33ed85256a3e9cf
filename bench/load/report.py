"""The report of a load run: figures from the users' job records and the queue samples, as CSV and a table.

A *job record* is what one simulated user saw of one submit (``JobRecord``): when it
was sent, how long the ``POST /v1/jobs`` took, the answer's status and error code,
and for an accepted job when its first segment came, when it ended and how.
``summarize`` turns the records, the queue-depth samples and the store check into
one dictionary; ``write_csv`` writes it as CSV files; ``print_table`` prints it.

Percentiles interpolate linearly between the closest ranks (numpy's default), so
p50 of ``[1, 2, 3, 4]`` is 2.5; an empty list has none.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

QUANTILES = (50, 95, 99)
SERVER_HISTOGRAM = "talkfarm_http_request_duration_seconds"


@dataclass
class JobRecord:
    """One submit of one simulated user (a line of the run's records file)."""

    t: float  # when the submit was sent (seconds since the epoch)
    kind: str  # speak | chat
    upload: str  # avatar (a saved avatar's ID) | fresh (a portrait uploaded with the job)
    submit_s: float  # the POST /v1/jobs answer's latency
    status: int  # its HTTP status (0: no answer)
    code: str | None = None  # the refusal's error code
    job_id: str | None = None
    outcome: str | None = None  # what the user saw at the end: succeeded | failed | cancelled | unfinished
    fail_code: str | None = None  # a failed job's error code
    e2e_s: float | None = None  # submit sent → the job's end seen
    first_segment_s: float | None = None  # submit sent → its first segment event
    video_bytes: int | None = None  # the downloaded MP4's size

    @property
    def accepted(self) -> bool:
        return self.status == 202 and self.job_id is not None


@dataclass
class RequestError:
    """A request other than a submit that did not answer as expected (an avatar upload, an event stream…)."""

    t: float
    name: str
    status: int
    code: str | None


def read_records(path: Path) -> tuple[list[JobRecord], list[RequestError]]:
    """The records file: one JSON object a line, ``{"job": {...}}`` or ``{"error": {...}}``."""
    jobs: list[JobRecord] = []
    errors: list[RequestError] = []
    if not path.exists():
        return jobs, errors
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if "job" in entry:
            jobs.append(JobRecord(**entry["job"]))
        else:
            errors.append(RequestError(**entry["error"]))
    return jobs, errors


def percentiles(values: Iterable[float]) -> dict[str, float | int | None]:
    """``n``, ``p50``, ``p95``, ``p99`` and ``max`` (None each when there are no values)."""
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return {"n": 0, **{f"p{q}": None for q in QUANTILES}, "max": None}
    found = np.percentile(data, QUANTILES)
    return {"n": int(data.size), **{f"p{q}": round(float(v), 4) for q, v in zip(QUANTILES, found)},
            "max": round(float(data.max()), 4)}


def server_submits(metrics_text: str) -> dict[str, Any]:
    """The coordinator's own time for ``POST /v1/jobs`` from its ``/metrics`` text (every status): ``n``, the
    share answered within each bucket bound, and ``p99_at_most``, the smallest bound holding 99 % of them
    (None when more than 1 % took longer than the largest). Set against the users' times it tells the
    coordinator's share of a slow submit from the client's and the network's."""
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != SERVER_HISTOGRAM:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (sample.name.endswith("_bucket") and labels.get("method") == "POST"
                    and labels.get("route") == "/v1/jobs"):
                bound = float(labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
    total = counts.get(float("inf"), 0.0)
    if not total:
        return {"n": 0, "within": {}, "p99_at_most": None}
    bounds = sorted(bound for bound in counts if bound != float("inf"))
    within = {f"{bound:g}": round(counts[bound] / total, 4) for bound in bounds}
    p99 = next((bound for bound in bounds if counts[bound] >= 0.99 * total), None)
    return {"n": int(total), "within": within, "p99_at_most": p99}


def errors_by_code(jobs: Sequence[JobRecord], others: Sequence[RequestError]) -> Counter[str]:
    """Every error seen, as ``WHERE STATUS CODE``: refused submits, failed jobs, other requests."""
    counted: Counter[str] = Counter()
    for job in jobs:
        if not job.accepted:
            counted[f"submit {job.status} {job.code or '-'}"] += 1
        elif job.outcome == "failed":
            counted[f"job failed {job.fail_code or '-'}"] += 1
    for error in others:
        counted[f"{error.name} {error.status} {error.code or '-'}"] += 1
    return counted


def summarize(jobs: Sequence[JobRecord], others: Sequence[RequestError], queues: Sequence[dict[str, float]],
              store: dict[str, Any], run: dict[str, Any], server: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's figures. ``store``: the store check (``accepted``, ``by_status``, ``lost``, ``stuck``);
    ``run``: what was asked (users, backends, …), copied into the summary; ``server``: ``server_submits``."""
    accepted = [job for job in jobs if job.accepted]
    succeeded = [job for job in accepted if job.outcome == "succeeded"]
    seconds = float(run.get("seconds") or 0.0)
    stages = [key for key in (queues[0] if queues else {}) if key != "t"]
    return {
        "run": run,
        "jobs": {"submitted": len(jobs), "accepted": len(accepted), "refused": len(jobs) - len(accepted),
                 "succeeded_seen": len(succeeded), "store": store},
        "throughput_jobs_per_s": round(len(succeeded) / seconds, 3) if seconds else None,
        "submit_s": {"all": percentiles(job.submit_s for job in jobs if job.status),
                     **{upload: percentiles(job.submit_s for job in jobs if job.status and job.upload == upload)
                        for upload in ("avatar", "fresh")}},
        "submit_server": server or server_submits(""),  # none read: the empty view
        "e2e_s": {kind: percentiles(job.e2e_s for job in succeeded if job.kind == kind and job.e2e_s is not None)
                  for kind in ("speak", "chat")},
        "first_segment_s": percentiles(job.first_segment_s for job in succeeded if job.first_segment_s is not None),
        "errors": dict(errors_by_code(jobs, others).most_common()),
        "queue_depth": {stage: {"max": int(max(sample[stage] for sample in queues)),
                                "mean": round(float(np.mean([sample[stage] for sample in queues])), 2)}
                        for stage in stages},
    }


def write_csv(out: Path, jobs: Sequence[JobRecord], queues: Sequence[dict[str, float]],
              summary: dict[str, Any]) -> list[Path]:
    """``jobs.csv`` (a row a submit), ``queues.csv`` (a row a sample), ``latency.csv`` (a row a measure),
    ``errors.csv`` (a row an error code); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "jobs.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(JobRecord)])
        for job in jobs:
            writer.writerow(["" if value is None else value for value in asdict(job).values()])
    written.append(path)
    path = out / "queues.csv"
    with path.open("w", newline="") as f:
        columns = list(queues[0]) if queues else ["t"]
        writer = csv.writer(f)
        writer.writerow(columns)
        for sample in queues:
            writer.writerow([sample[column] for column in columns])
    written.append(path)
    path = out / "latency.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["measure", "n", *(f"p{q}" for q in QUANTILES), "max"])
        for measure, found in latency_rows(summary):
            writer.writerow([measure, *("" if value is None else value for value in found.values())])
    written.append(path)
    path = out / "errors.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["error", "count"])
        writer.writerows(summary["errors"].items())
    written.append(path)
    return written


def latency_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each latency measure of the summary with its percentiles, in the table's order."""
    rows = [(f"submit ({upload})", found) for upload, found in summary["submit_s"].items()]
    rows += [(f"end-to-end {kind}", found) for kind, found in summary["e2e_s"].items()]
    rows.append(("first segment", summary["first_segment_s"]))
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f}"


def print_table(summary: dict[str, Any]) -> None:
    run, jobs, store = summary["run"], summary["jobs"], summary["jobs"]["store"]
    print(f"\nload: {run.get('users')} users, {run.get('backends')} backends, {run.get('seconds')} s, "
          f"coordinator {run.get('coordinator')}; {run.get('cpus')} CPUs, load {run.get('load_before')} -> "
          f"{run.get('load_after')}")
    print(f"  submitted {jobs['submitted']}, accepted {jobs['accepted']}, refused {jobs['refused']}")
    print(f"  store: {store.get('by_status')}, lost {store.get('lost')}, stuck {store.get('stuck')}")
    print(f"  throughput {summary['throughput_jobs_per_s']} jobs/s succeeded")
    print(f"\n  {'ms':<20} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for measure, found in latency_rows(summary):
        print(f"  {measure:<20} {found['n']:>6} {_ms(found['p50']):>8} {_ms(found['p95']):>8} "
              f"{_ms(found['p99']):>8} {_ms(found['max']):>8}")
    server = summary.get("submit_server") or {}
    if server.get("n"):
        within = server["within"]
        print(f"  submit, the coordinator's own time ({server['n']}, from /metrics): "
              f"{100 * within.get('0.05', 0):.1f} % within 50 ms, {100 * within.get('0.1', 0):.1f} % within 100 ms, "
              f"p99 at most {_ms(server['p99_at_most'])} ms")
    print("\n  errors: " + (", ".join(f"{code}: {n}" for code, n in summary["errors"].items()) or "none"))
    depths = summary["queue_depth"].items()
    print("  queue depth max/mean: " + ", ".join(f"{stage} {d['max']}/{d['mean']}" for stage, d in depths))
