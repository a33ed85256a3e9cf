"""One OS process that a fault test starts, stops, kills and restarts, and waits with a deadline.

A ``ManagedProcess`` runs in a session of its own with its output appended to a
log file. ``stop`` sends its stop signal and waits until the process *and every
descendant it had* are gone (a RabbitMQ node is a shell script around the Erlang
VM; a Celery worker has pool children), escalating to SIGKILL after the grace
period; ``kill`` sends SIGKILL to all of them at once. Descendants and resident
memory are read from ``/proc`` (Linux); a process's TCP connections through ``psutil``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import psutil

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline."""


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, interval: float = 0.1,
               ignore: tuple[type[BaseException], ...] = (), detail: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns a true value, and return that value.

    Exceptions of the types in ``ignore`` count as "not yet". After ``timeout`` seconds
    raise ``WaitTimeout`` naming ``what``, the last ignored exception and ``detail()``.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignore as e:
            last = e
        if time.monotonic() >= deadline:
            message = f"{what}: not within {timeout:g} s"
            if last is not None:
                message += f" (last error: {last!r})"
            if detail is not None:
                message += "\n" + detail()
            raise WaitTimeout(message)
        time.sleep(interval)


def _parent_of(stat: str) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _state_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    return _state_of(pid) not in (None, "Z", "X")


def children_of(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if _parent_of(stat) == pid and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def descendants_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, their children, ...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        children = children_of(todo.pop())
        found += children
        todo += children
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ManagedProcess:
    """A command run in its own session with its output appended to ``log_path``.

    ``stop_signal`` goes to the process group when ``signal_group`` is true (a shell
    script that runs its program in the foreground), else to the main process only (a
    Celery worker, whose pool children must not be signalled directly).
    """

    def __init__(self, name: str, command: Sequence[str], log_path: Path, *,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None, user: str | None = None,
                 stop_signal: int = signal.SIGTERM, signal_group: bool = False, grace: float = 30.0) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.signal_group = signal_group
        self.grace = grace
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        """The main process's ID (raises when it was never started)."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the main process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The main process's exit status (None while it runs or before it started)."""
        return None if self._process is None else self._process.poll()

    def start(self) -> None:
        """Start the command; its output goes to the end of the log file."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, user=self.user,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)

    def tree(self) -> list[int]:
        """The main process and its live descendants."""
        if not self.running:
            return []
        return [self.pid, *descendants_of(self.pid)]

    def children(self) -> list[int]:
        """The main process's live direct children (a prefork worker's pool processes)."""
        return children_of(self.pid) if self.running else []

    def ports_connected_to(self, port: int) -> list[int]:
        """The local ports of this process's TCP connections to ``port`` on this machine (its broker
        connections, say), read before a kill so that the server side of them can be found afterwards."""
        if not self.running:
            return []
        return sorted(c.laddr.port for c in psutil.Process(self.pid).net_connections(kind="tcp")
                      if c.raddr and c.raddr.port == port)

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: the stop signal, then wait for the whole tree; SIGKILL after the grace period."""
        if not self.running:
            self._reap()
            return
        tree = self.tree()
        try:
            if self.signal_group:
                os.killpg(self.pid, self.stop_signal)
            else:
                os.kill(self.pid, self.stop_signal)
        except ProcessLookupError:
            pass
        try:
            self._wait_gone(tree, self.grace if timeout is None else timeout)
        except WaitTimeout:
            self._kill_tree(tree)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the process and every descendant at once, and wait until they are gone."""
        if not self.running:
            self._reap()
            return
        self._kill_tree(self.tree())
        self._reap()

    def log_text(self, since_start: bool = True) -> str:
        """The log, from this start of the process on (``since_start``) or all of it."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset if since_start else 0)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def logs_again(self, text: str) -> Callable[[], bool]:
        """A condition for ``wait_until``: ``text`` is in the log more often than it is now (counted over
        the whole log, so that a restart of the process in between does not hide it)."""
        before = self.log_text(since_start=False).count(text)
        return lambda: self.log_text(since_start=False).count(text) > before

    def log_tail(self, chars: int = 4000) -> str:
        """The log's last ``chars`` characters under a header naming the process, for failure messages."""
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log_text(since_start=False)[-chars:]}"

    def _kill_tree(self, tree: list[int]) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._wait_gone(tree, 30.0)

    def _wait_gone(self, tree: list[int], timeout: float) -> None:
        def gone() -> bool:
            if self._process is not None:
                self._process.poll()  # reaps the main process, so it does not linger as a zombie
            return not any(is_alive(pid) for pid in tree)

        wait_until(gone, timeout, f"{self.name} to exit", interval=0.05)

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()
