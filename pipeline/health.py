"""Worker health that means something: the stage's models are loaded and its node consumes its queue.

A worker process marks its stage's models loaded at the end of its warm-up
(``pipeline.markers.mark_loaded``, called by ``pipeline.runtime.warm_up``).

``talkfarm-health STAGE`` (``python -m pipeline.health STAGE``) is the container healthcheck. It
exits 0 only when

1. a live process of this host has marked the stage's models loaded, and
2. the worker node ``<queue prefix><stage>@<hostname>`` answers Celery's ``active_queues``
   inspection with the stage's queue among the queues it consumes.

``talkfarm-health STAGE --load-models`` is the image's build-time check, run as the user the
worker runs as: every file under ``TALKFARM_MODEL_DIR`` is readable and every backend of the
stage loads.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import stat
import sys
import time
from pathlib import Path

from contracts.settings import Settings, get_settings
from pipeline.markers import default_folder, read_markers
from pipeline.stages import STAGE_NAMES, STAGES

log = logging.getLogger(__name__)

INSPECT_TIMEOUT_SECONDS = 10.0


def node_name(stage: str, settings: Settings, host: str | None = None) -> str:
    """The Celery node of ``stage``'s worker on ``host`` (this host; ``%h`` for Celery to expand):
    ``talkfarm-worker`` names its node with it."""
    return f"{settings.queue_prefix}{stage}@{host or socket.gethostname()}"


def consumed_queues(node: str, timeout: float) -> set[str] | None:
    """The queues ``node`` consumes, as it answers Celery's inspection; None when it does not answer."""
    from kombu.exceptions import OperationalError

    from pipeline.app import app

    try:
        replies = app.control.inspect(destination=[node], timeout=timeout, limit=1).active_queues()
    except (OperationalError, OSError) as e:
        raise ConnectionError(f"the broker is unreachable: {e}") from e
    if not replies or node not in replies:
        return None
    return {queue["name"] for queue in replies[node]}


def check(stage: str, settings: Settings, folder: Path, timeout: float = INSPECT_TIMEOUT_SECONDS) -> str:
    """Say why the stage's worker here is healthy; raise ``RuntimeError`` saying why it is not."""
    live = [m for m in read_markers(stage, settings, folder) if m.alive()]
    if not live:
        raise RuntimeError(f"{stage}: no process has loaded the {stage} models yet (no live marker in {folder})")
    node = node_name(stage, settings)
    try:
        queues = consumed_queues(node, timeout)
    except ConnectionError as e:
        raise RuntimeError(f"{stage}: {e}") from e
    if queues is None:
        raise RuntimeError(f"{stage}: the worker node {node} did not answer within {timeout:.0f} s")
    queue = settings.queue_name(stage)
    if queue not in queues:
        raise RuntimeError(f"{stage}: {node} does not consume the queue {queue} (it consumes {sorted(queues)})")
    ages = ", ".join(f"pid {m.pid} {time.time() - m.loaded_at:.0f} s ago" for m in live)
    return f"{stage}: healthy; models loaded ({ages}); {node} consumes {queue}"


def unreadable_files(root: Path) -> list[str]:
    """Files and folders under ``root`` that this user cannot read (folders: cannot list or enter)."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        wanted = os.R_OK | os.X_OK if path.is_dir() else os.R_OK
        if not os.access(path, wanted):
            info = path.stat()
            found.append(f"{path} (mode {stat.filemode(info.st_mode)}, uid {info.st_uid})")
    return found


def load_models(stage: str, settings: Settings) -> str:
    """Load every backend of ``stage`` as this user; raise ``RuntimeError`` naming what cannot be read or loaded."""
    from contracts.errors import StageError
    from pipeline.runtime import loaded, unload_all

    if not settings.model_dir.is_dir():
        raise RuntimeError(f"{stage}: the model folder {settings.model_dir} does not exist")
    unreadable = unreadable_files(settings.model_dir)
    if unreadable:
        raise RuntimeError(f"{stage}: user uid {os.getuid()} cannot read: " + "; ".join(unreadable))
    names = settings.stage(stage).backend_names()
    registry = STAGES[stage].registry()
    start = time.perf_counter()
    try:
        for name in names:
            loaded(registry, name)
    except StageError as e:
        raise RuntimeError(f"{stage}: {e.message}") from e
    finally:
        unload_all()
    return f"{stage}: uid {os.getuid()} loaded {', '.join(names)} in {time.perf_counter() - start:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm-health", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--load-models", action="store_true",
                        help="instead of the healthcheck: load the stage's models as this user")
    parser.add_argument("--timeout", type=float, default=INSPECT_TIMEOUT_SECONDS,
                        help="seconds to wait for the worker node's answer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    try:
        if args.load_models:
            print(load_models(args.stage, settings))
        else:
            print(check(args.stage, settings, default_folder(), args.timeout))
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
