"""What every private service of the kit has: start, stop, kill, restart on its data, a URL, readiness."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from tests.faults.process import ManagedProcess, wait_until


class ServiceExited(RuntimeError):
    """The service's process ended while the kit waited for it to become ready."""


class Service(ABC):
    """A server process on private ports whose data folder outlives its restarts.

    ``start`` prepares the data folder the first time (idempotent), starts the process
    and waits until the service answers. ``stop`` is graceful, ``kill`` is SIGKILL;
    ``restart`` brings it back on the same folder and ports, so what it kept durably is
    there again. As a context manager it is started and, at the end, killed (the data
    folder is a temporary one).
    """

    start_timeout: float = 60.0

    def __init__(self, process: ManagedProcess) -> None:
        self.process = process

    @property
    @abstractmethod
    def url(self) -> str:
        """Where clients connect."""

    @abstractmethod
    def answers(self) -> bool:
        """Whether the service answers a client now (may raise on connection errors)."""

    def prepare(self) -> None:
        """Create the data folder and configuration; called before every start, so idempotent."""

    def start(self, timeout: float | None = None) -> None:
        """Start the process and wait until the service answers."""
        self.prepare()
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``answers()``; raise ``ServiceExited`` at once if the process ends meanwhile."""
        def ready() -> bool:
            if not self.process.running:
                raise ServiceExited(f"{self.process.name} exited with {self.process.returncode}\n"
                                    f"{self.process.log_tail()}")
            return self.answers()

        wait_until(ready, self.start_timeout if timeout is None else timeout, f"{self.process.name} to answer",
                   interval=0.2, ignore=(OSError, ConnectionError, TimeoutError, *self.connection_errors()),
                   detail=self.process.log_tail)

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """Client exceptions that mean "not answering yet" (besides ``OSError``)."""
        return ()

    def stop(self) -> None:
        """Graceful shutdown; returns when the process and its descendants are gone."""
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no shutdown, as in a crash or an OOM kill."""
        self.process.kill()

    def restart(self, hard: bool = False) -> None:
        """Stop (``hard``: kill), start again on the same data folder and ports, wait until it answers."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.kill()
