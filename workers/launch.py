"""``talkfarm-worker STAGE``: run a Celery worker that consumes one stage's queue.

Checks that the model files of each of the stage's backends exist before forking (a missing model names
the command that prepares it), then starts Celery with the stage's queue, pool
and concurrency. Models load after the fork, in ``worker_process_init``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from workers.errors import StageError
from workers.payload import STAGES
from workers.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm-worker", description=__doc__)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--concurrency", type=int, help="processes (default: the stage's setting)")
    parser.add_argument("--pool", choices=("prefork", "solo", "threads"),
                        help="prefork isolates crashes; solo or threads for one GPU per process "
                             "(default: the stage's `pool` setting)")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)

    settings = get_settings()
    os.environ["TALKFARM_WORKER_STAGES"] = args.stage
    registry = importlib.import_module(f"workers.{args.stage}.base").registry
    try:
        for name in settings.stage(args.stage).backend_names():
            registry.create(name, settings).check()
    except StageError as e:
        print(f"talkfarm-worker: {e.message}", file=sys.stderr)
        return 2

    from celery.signals import worker_init

    from workers.celery_app import app
    from workers.runtime import warm_up

    pool = args.pool or settings.stage(args.stage).pool
    if pool != "prefork":
        # No child processes: load in the worker process itself.
        worker_init.connect(warm_up, weak=False)
    concurrency = args.concurrency or settings.stage(args.stage).concurrency
    app.worker_main([
        # The queue prefix is in the node name too, so two farms on one host (tests) do not clash.
        "worker", "--queues", settings.queue_name(args.stage), "--hostname", f"{settings.queue_prefix}{args.stage}@%h",
        "--pool", pool, "--concurrency", str(concurrency), "--loglevel", args.loglevel,
        "--task-events", "--without-gossip", "--without-mingle",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
