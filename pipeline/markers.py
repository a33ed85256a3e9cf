"""Health markers: a worker process records, once its stage's models are loaded, that it has (``mark_loaded``).

One small file per stage names the process: its PID and its start time as the
kernel counts it, so a marker left behind by a process that has died, or by an
earlier run of a restarted container (whose PIDs start again from 1), never
counts. Linux only: the start time is read from ``/proc``. ``pipeline.health``
reads them for the container healthcheck.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from contracts.settings import Settings, get_settings

log = logging.getLogger(__name__)


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
