"""A private Redis: the results role (optionally with an append-only file) or the LRU cache role."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import redis

from tests.faults.ports import free_port
from tests.faults.process import ManagedProcess
from tests.faults.service import Service


class RedisServer(Service):
    """``redis-server`` on a free port with its files in ``root``.

    ``appendonly``: every write goes to the append-only file in ``root`` (``fsync``
    ``everysec`` as in production, or ``always``), so a restart, even after SIGKILL,
    finds the data again. ``maxmemory`` with ``allkeys-lru`` makes it a cache that
    evicts. Without either it keeps nothing across a restart.
    """

    start_timeout = 30.0

    def __init__(self, root: Path, *, appendonly: bool = False, fsync: Literal["everysec", "always"] = "everysec",
                 maxmemory: str | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.appendonly = appendonly
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root),
                   "--save", "", "--protected-mode", "no", "--daemonize", "no",
                   "--appendonly", "yes" if appendonly else "no", "--appendfsync", fsync]
        if maxmemory is not None:
            command += ["--maxmemory", maxmemory, "--maxmemory-policy", "allkeys-lru"]
        super().__init__(ManagedProcess(f"redis :{self.port}", command, root / "redis.log", cwd=root))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def client(self) -> redis.Redis:
        """A client of this server with short timeouts."""
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def answers(self) -> bool:
        with self.client() as client:
            # While it loads the append-only file Redis answers LOADING errors.
            return bool(client.ping())

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (redis.RedisError,)

    def in_append_only_file(self, data: bytes) -> bool:
        """Whether ``data`` (a key or value) has reached the append-only files (the OS has it)."""
        folder = self.root / "appendonlydir"
        return any(data in path.read_bytes() for path in folder.glob("*.aof")) if folder.exists() else False
