"""Worker health that means something: the stage's models are loaded and its node consumes its queue.

A worker process calls ``mark_loaded`` at the end of its warm-up (``workers.runtime.warm_up``),
once every backend of its stages has loaded. That writes one small marker file per stage naming
the process: its PID and its start time as the kernel counts it, so a marker left behind by a
process that has died, or by an earlier run of a restarted container (whose PIDs start again
from 1), never counts. Linux only: the start time is read from ``/proc``.

``talkfarm-health STAGE`` (``python -m workers.health STAGE``) is the container healthcheck. It
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
import json
import logging
import os
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from workers.payload import STAGES
from workers.settings import Settings, get_settings

log = logging.getLogger(__name__)

INSPECT_TIMEOUT_SECONDS = 10.0


def default_folder() -> Path:
    """Where markers live: private to the user, on the container's own disk."""
    return Path(tempfile.gettempdir()) / f"talkfarm-health-{os.getuid()}"


def process_started(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Field 22 of proc(5); fields[0] is field 3 (the state), after the command name in parentheses.
    return fields[19] if len(fields) > 19 else None


@dataclass(frozen=True)
class Marker:
    stage: str
    pid: int
    started: str
    loaded_at: float
    backends: tuple[str, ...]

    def alive(self) -> bool:
        return process_started(self.pid) == self.started


def _marker_name(settings: Settings, stage: str, pid: int) -> str:
    return f"{settings.queue_name(stage)}.{pid}.json"


def read_markers(stage: str, settings: Settings, folder: Path) -> list[Marker]:
    """The stage's markers in ``folder``, live or not; unreadable or foreign files are ignored."""
    markers = []
    for path in sorted(folder.glob(f"{settings.queue_name(stage)}.*.json")):
        try:
            data = json.loads(path.read_text())
            markers.append(Marker(stage, int(data["pid"]), str(data["started"]), float(data["loaded_at"]),
                                  tuple(data["backends"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return markers


def mark_loaded(stages: Iterable[str], settings: Settings | None = None, folder: Path | None = None) -> None:
    """Record that this process has loaded every backend of ``stages``; drop markers of dead processes."""
    settings = settings or get_settings()
    folder = folder or default_folder()
    pid = os.getpid()
    started = process_started(pid)
    if started is None:
        log.warning("no /proc on this system: worker health markers are not written")
        return
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stage in stages:
        for marker in read_markers(stage, settings, folder):
            if not marker.alive():
                (folder / _marker_name(settings, stage, marker.pid)).unlink(missing_ok=True)
        body = {"pid": pid, "started": started, "loaded_at": time.time(),
                "backends": settings.stage(stage).backend_names()}
        target = folder / _marker_name(settings, stage, pid)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        os.replace(temporary, target)
        log.info("%s models loaded in process %d: health marker %s", stage, pid, target)


def node_name(stage: str, settings: Settings) -> str:
    """The Celery node of this host's ``stage`` worker, as ``talkfarm-worker`` names it."""
    return f"{settings.queue_prefix}{stage}@{socket.gethostname()}"


def consumed_queues(node: str, timeout: float) -> set[str] | None:
    """The queues ``node`` consumes, as it answers Celery's inspection; None when it does not answer."""
    from kombu.exceptions import OperationalError

    from workers.celery_app import app

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
    from workers.errors import StageError
    from workers.runtime import backend_for, unload_all

    if not settings.model_dir.is_dir():
        raise RuntimeError(f"{stage}: the model folder {settings.model_dir} does not exist")
    unreadable = unreadable_files(settings.model_dir)
    if unreadable:
        raise RuntimeError(f"{stage}: user uid {os.getuid()} cannot read: " + "; ".join(unreadable))
    names = settings.stage(stage).backend_names()
    start = time.perf_counter()
    try:
        for name in names:
            backend_for(stage, name)
    except StageError as e:
        raise RuntimeError(f"{stage}: {e.message}") from e
    finally:
        unload_all()
    return f"{stage}: uid {os.getuid()} loaded {', '.join(names)} in {time.perf_counter() - start:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm-health", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
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
