"""A worker's own HTTP port: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for Kubernetes.

``talkfarm-worker`` calls ``use_multiprocess_dir`` before anything imports
prometheus_client: every process of the worker (the Celery main process and its
prefork pool processes, which load the models) then writes its samples to files in
one folder of its own, and ``serve`` answers ``/metrics`` from the main process
with all of them summed (prometheus_client's multiprocess mode), plus the
resident memory of the worker's processes and, where NVML sees a GPU, the GPUs'
memory and utilisation (``pipeline.gpu``).

``/healthz`` fails once Celery's event heartbeat (sent every 2 s by a worker's
main loop) has stopped for ``metrics.heartbeat_timeout_seconds``: a hung worker is
restarted. ``/readyz`` answers 200 once a process of the worker has loaded its
models (``mark_ready``, called at the end of ``pipeline.runtime.warm_up``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

from contracts.telemetry import MetricsSettings

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_READY_PREFIX = "ready."
_heartbeat: list[float] = []


def use_multiprocess_dir(settings: MetricsSettings, stage: str) -> Path:
    """Point prometheus_client's multiprocess mode at an empty folder of this worker's own.

    Must run before prometheus_client is first imported in the process (it reads the
    variable at import), so before any backend, the Celery app or ``pipeline.metrics``.
    """
    if "prometheus_client" in sys.modules and MULTIPROC_ENV not in os.environ:
        raise RuntimeError("prometheus_client was imported before the metrics folder was set")
    if settings.multiproc_dir:
        folder = Path(settings.multiproc_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # samples of an earlier run would be summed in
            if stale.is_file():
                stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"talkfarm-metrics-{stage}-"))
        owner = os.getpid()

        def remove() -> None:  # pool processes inherit atexit hooks through fork: only the maker removes it
            if os.getpid() == owner:
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def mark_ready() -> None:
    """Say that this process has loaded its models (``/readyz``); no-op outside a worker."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        (Path(folder) / f"{_READY_PREFIX}{os.getpid()}").touch()


def ready(folder: Path) -> bool:
    """Whether a live process of this worker has loaded its models."""
    for marker in folder.glob(f"{_READY_PREFIX}*"):
        try:
            os.kill(int(marker.name.removeprefix(_READY_PREFIX)), 0)
        except (ValueError, ProcessLookupError):
            continue
        except PermissionError:
            pass
        return True
    return False


def healthy(timeout: float) -> bool:
    """False once heartbeats have started and then stopped for ``timeout`` seconds."""
    return not _heartbeat or time.monotonic() - _heartbeat[-1] < timeout


def _on_heartbeat(**_: Any) -> None:
    _heartbeat[:] = [time.monotonic()]


class MemoryCollector:
    """``talkfarm_process_resident_memory_bytes``: resident memory of a process and its children."""

    def __init__(self, service: str) -> None:
        self.service = service

    def describe(self) -> Iterable[Any]:
        yield self._family()

    def _family(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily("talkfarm_process_resident_memory_bytes",
                                 "Resident memory of the service's processes (a worker: its pool too)",
                                 labels=["service"])

    def collect(self) -> Iterable[Any]:
        import psutil

        family = self._family()
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        family.add_metric([self.service], total)
        yield family


def registry_for(folder: Path, stage: str) -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from pipeline.gpu import GpuCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    registry.register(MemoryCollector(f"worker-{stage}"))
    gpus = GpuCollector.detect(stage)
    if gpus is not None:
        registry.register(gpus)
    return registry


def serve(settings: MetricsSettings, stage: str, folder: Path) -> ThreadingHTTPServer:
    """Start the worker's HTTP port in a daemon thread of the main process; returns the server."""
    from celery.signals import heartbeat_sent
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    heartbeat_sent.connect(_on_heartbeat, weak=False)
    registry = registry_for(folder, stage)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = healthy(settings.heartbeat_timeout_seconds)
                self._answer(200 if ok else 503, b"ok\n" if ok else b"heartbeat stopped\n")
            elif path == "/readyz":
                ok = ready(folder)
                self._answer(200 if ok else 503, b"ready\n" if ok else b"models loading\n")
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not logged
            pass

    server = ThreadingHTTPServer((settings.host, settings.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("%s worker metrics at http://%s:%d/metrics", stage, settings.host, server.server_address[1])
    return server
