"""PNG plots of a load run (matplotlib, Agg backend: no display needed).

* ``latency.png``: each submit's latency and each job's end-to-end time over the run;
* ``throughput.png``: jobs accepted and succeeded per 10 s, and the users running;
* ``queues.png``: the depth of every stage queue (and the events queue), sampled each second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from bench.load.report import JobRecord  # noqa: E402

BIN_SECONDS = 10.0


def _title(run: dict) -> str:
    return f"{run.get('users')} users, {run.get('backends')} backends, coordinator {run.get('coordinator')}"


def plot_latency(path: Path, jobs: Sequence[JobRecord], start: float, run: dict) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for upload, colour in (("avatar", "tab:blue"), ("fresh", "tab:orange")):
        chosen = [job for job in jobs if job.upload == upload and job.status]
        top.scatter([job.t - start for job in chosen], [1000 * job.submit_s for job in chosen], s=6, c=colour,
                    label=f"submit ({upload})", alpha=0.6)
    top.set_ylabel("submit latency (ms)")
    top.set_yscale("log")
    top.axhline(100, color="grey", linestyle="--", linewidth=0.8)
    top.legend(loc="upper left")
    top.set_title(_title(run))
    for kind, colour in (("speak", "tab:green"), ("chat", "tab:purple")):
        ended = [job for job in jobs if job.kind == kind and job.outcome == "succeeded" and job.e2e_s is not None]
        bottom.scatter([job.t - start for job in ended], [job.e2e_s for job in ended], s=6, c=colour,
                       label=f"end-to-end {kind}", alpha=0.6)
    first = [job for job in jobs if job.first_segment_s is not None]
    bottom.scatter([job.t - start for job in first], [job.first_segment_s for job in first], s=4, c="tab:red",
                   label="first segment", alpha=0.5)
    bottom.set_ylabel("seconds")
    bottom.set_xlabel("seconds into the run (by submit time)")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_throughput(path: Path, jobs: Sequence[JobRecord], start: float, seconds: float,
                    users: Sequence[tuple[float, int]], run: dict) -> None:
    edges = np.arange(0.0, max(seconds, BIN_SECONDS) + BIN_SECONDS, BIN_SECONDS)
    accepted = [job.t - start for job in jobs if job.accepted]
    ended = [job.t - start + job.e2e_s for job in jobs if job.outcome == "succeeded" and job.e2e_s is not None]
    fig, ax = plt.subplots(figsize=(10, 4))
    for values, label in ((accepted, "accepted"), (ended, "succeeded")):
        counts, _ = np.histogram(values, bins=edges)
        ax.step(edges[:-1], counts / BIN_SECONDS, where="post", label=f"{label} jobs/s")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("jobs/s (10 s bins)")
    ax.set_title(_title(run))
    if users:
        twin = ax.twinx()
        twin.plot([t for t, _ in users], [n for _, n in users], color="grey", linestyle=":", label="users")
        twin.set_ylabel("users")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_queues(path: Path, queues: Sequence[dict[str, float]], run: dict) -> None:
    fig, ax = plt.subplots(figsize=(10, 4))
    if queues:
        for stage in (key for key in queues[0] if key != "t"):
            ax.plot([sample["t"] for sample in queues], [sample[stage] for sample in queues], label=stage)
        ax.legend(loc="upper left")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("messages waiting")
    ax.set_title("queue depth, " + _title(run))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(out: Path, jobs: Sequence[JobRecord], queues: Sequence[dict[str, float]], start: float,
                seconds: float, users: Sequence[tuple[float, int]], run: dict) -> list[Path]:
    """Every plot into ``out``; the paths written."""
    paths = [out / "latency.png", out / "throughput.png", out / "queues.png"]
    plot_latency(paths[0], jobs, start, run)
    plot_throughput(paths[1], jobs, start, seconds, users, run)
    plot_queues(paths[2], queues, run)
    return paths
