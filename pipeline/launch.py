"""``talkfarm-worker STAGE``: run a Celery worker that consumes one stage's queue.

Checks that the model files of each of the stage's backends exist before forking
(a missing model names the command that prepares it), imports the stage's task
module (``pipeline.stages``), then starts Celery with the stage's queue, pool
and concurrency, at the stage's ``nice`` priority. Models load after the fork, in ``worker_process_init``
(``pipeline.runtime.warm_up``), or in the worker process itself for the
``solo`` and ``threads`` pools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from contracts.errors import StageError
from contracts.logs import configure_logging
from contracts.settings import get_settings
from pipeline.exposition import use_multiprocess_dir
from pipeline.stages import STAGE_NAMES, STAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm-worker", description=__doc__)
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--concurrency", type=int, help="processes (default: the stage's setting)")
    parser.add_argument("--pool", choices=("prefork", "solo", "threads"),
                        help="prefork isolates crashes; solo or threads for one GPU per process "
                             "(default: the stage's `pool` setting)")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics, /healthz, /readyz "
                                                         "(default: the metrics.port setting; 0: any free port)")
    args = parser.parse_args(argv)

    settings = get_settings()
    spec = STAGES[args.stage]
    if settings.stage(spec.name).nice:
        os.nice(settings.stage(spec.name).nice)  # before the pool forks: its processes inherit it
    os.environ["TALKFARM_WORKER_STAGES"] = spec.name
    metrics = settings.metrics.model_copy(update={"port": args.metrics_port}) if args.metrics_port is not None \
        else settings.metrics
    # Before any import of prometheus_client (backends, the Celery app): every pool process writes there.
    metrics_dir = use_multiprocess_dir(metrics, spec.name) if metrics.enabled else None
    configure_logging(settings.log, f"worker-{spec.name}")
    registry = spec.registry()
    try:
        for name in settings.stage(spec.name).backend_names():
            registry.create(name, settings).check()
    except StageError as e:
        print(f"talkfarm-worker: {e.message}", file=sys.stderr)
        return 2

    from amqp.exceptions import PreconditionFailed
    from celery.signals import setup_logging, worker_init

    from pipeline import observe  # noqa: F401  (log context, task seconds and queue wait of every task)
    from pipeline.app import app, declare_queues
    from pipeline.health import node_name
    from pipeline.runtime import offers, warm_up

    try:
        declare_queues(settings)  # the dead-letter queues too, before any message is dead-lettered
    except PreconditionFailed as e:
        print(f"talkfarm-worker: the broker holds the stage queues with other arguments ({e.reply_text}); "
              "run `talkfarm-admin queues recreate` (it refuses while they hold messages)", file=sys.stderr)
        return 2
    # Before the queue has a consumer, so that the coordinator keys the first job's cache entry too.
    offers().publish(spec.offer(settings))

    importlib.import_module(spec.tasks_module)  # registers the stage's tasks with the app
    # Celery leaves logging alone when setup_logging has a receiver: ours keeps the configured format.
    setup_logging.connect(lambda **_: configure_logging(settings.log, f"worker-{spec.name}"), weak=False)
    if metrics_dir is not None:
        from pipeline.exposition import serve

        serve(metrics, spec.name, metrics_dir)
    pool = args.pool or settings.stage(spec.name).pool
    os.environ["TALKFARM_WORKER_POOL"] = pool  # the runner's watchdog keeps time limits in threads and solo
    if pool != "prefork":
        # No child processes: load in the worker process itself.
        worker_init.connect(warm_up, weak=False)
    concurrency = args.concurrency or settings.stage(spec.name).concurrency
    app.worker_main([
        # The queue prefix is in the node name too, so two farms on one host (tests) do not clash.
        "worker", "--queues", settings.queue_name(spec.queue), "--hostname", node_name(spec.name, settings, "%h"),
        "--pool", pool, "--concurrency", str(concurrency), "--loglevel", args.loglevel,
        "--task-events", "--without-gossip", "--without-mingle",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
