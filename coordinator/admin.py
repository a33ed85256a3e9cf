"""``talkfarm-admin``: operator commands.

    talkfarm-admin db upgrade          create or migrate the job store schema
    talkfarm-admin models prepare      prepare the embedded models (offline)
    talkfarm-admin models check        say which stage's models are missing
    talkfarm-admin farm                run the coordinator, the four workers and Flower
    talkfarm-admin background          the event consumer, sweeper and retention as a process of their own
    talkfarm-admin queues recreate     declare the stage queues again (``coordinator.queue_admin``)
    talkfarm-admin dlq list|replay|purge   the dead-letter queues
    talkfarm-admin keys create|list|revoke the API keys (``coordinator.key_admin``)
"""

from __future__ import annotations

import argparse
import logging
import sys

from contracts.errors import StageError
from contracts.settings import get_settings
from coordinator import key_admin, queue_admin
from pipeline.stages import STAGE_NAMES, STAGES, prepare_models


def _db_upgrade(_: argparse.Namespace) -> int:
    from coordinator.store import migrate
    from coordinator.store.repo import make_engine

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    before, after = migrate.upgrade(make_engine(settings.db_url))
    print(f"job store schema: version {before} -> {after} ({settings.db_url.split('@')[-1]})")
    return 0


def _models_prepare(args: argparse.Namespace) -> int:
    settings = get_settings()
    for stage, paths in prepare_models(settings, args.stage or STAGE_NAMES, force=args.force).items():
        print(f"{stage}: " + ", ".join(str(p) for p in paths))
    return 0


def _models_check(args: argparse.Namespace) -> int:
    settings = get_settings()
    missing = 0
    for stage in args.stage or STAGE_NAMES:
        registry = STAGES[stage].registry()
        try:
            registry.create(settings.stage(stage).backend, settings).check()
            print(f"{stage}: ok ({settings.stage(stage).backend})")
        except StageError as e:
            missing += 1
            print(f"{stage}: {e.message}")
    return 1 if missing else 0


def _farm(args: argparse.Namespace) -> int:
    from coordinator.farm import run_farm

    return run_farm(get_settings(), host=args.host, port=args.port, flower=not args.no_flower,
                    flower_port=args.flower_port, metrics_port=args.metrics_port, api_key_file=args.api_key_file)


def _background(_: argparse.Namespace) -> int:
    from contracts.logs import configure_logging
    from coordinator.background import serve

    settings = get_settings()
    configure_logging(settings.log, "coordinator-background")
    return serve(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm-admin", description="talkfarm operator commands")
    sub = parser.add_subparsers(dest="group", required=True)

    db = sub.add_parser("db", help="the job store").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="create or migrate the schema").set_defaults(func=_db_upgrade)

    models = sub.add_parser("models", help="the embedded models").add_subparsers(dest="action", required=True)
    prep = models.add_parser("prepare", help="prepare the embedded models into TALKFARM_MODEL_DIR")
    prep.add_argument("--stage", action="append", choices=STAGE_NAMES, help="only this stage (repeatable)")
    prep.add_argument("--force", action="store_true", help="rebuild what is already there")
    prep.set_defaults(func=_models_prepare)
    check = models.add_parser("check", help="check that each stage's model files exist")
    check.add_argument("--stage", action="append", choices=STAGE_NAMES)
    check.set_defaults(func=_models_check)

    farm = sub.add_parser("farm", help="run the coordinator, the stage workers and Flower in the foreground")
    farm.add_argument("--host", default="127.0.0.1")
    farm.add_argument("--port", type=int, default=8000)
    farm.add_argument("--flower-port", type=int, default=5555)
    farm.add_argument("--no-flower", action="store_true")
    farm.add_argument("--metrics-port", type=int,
                      help="first worker's metrics port, the others follow "
                           "(default: the metrics.port setting; 0: any free ports)")
    farm.add_argument("--api-key-file", help="a token file to print with the URLs (scripts/run.sh makes one)")
    farm.set_defaults(func=_farm)

    sub.add_parser("background", help="apply worker events to the job store, sweep and retain "
                   "(with coordinator.background = separate)").set_defaults(func=_background)

    queue_admin.add_parsers(sub)
    key_admin.add_parsers(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
