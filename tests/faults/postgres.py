"""PostgreSQL for tests: a private cluster that can be killed, and throw-away databases on a server.

``PostgresCluster`` runs its own ``postgres`` (as the ``postgres`` user, which owns
the cluster's folder; root may not run it) on a free port of 127.0.0.1, with its
unix socket in that folder and trust authentication: "the database down, then back"
without touching the machine's server. ``scratch_database`` creates a uniquely named
database on a server (the machine's, by default) and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql
from sqlalchemy import create_engine, text

from tests.faults.ports import free_port
from tests.faults.process import ManagedProcess
from tests.faults.service import Service

BIN = Path(os.environ.get("TALKFARM_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_URL = os.environ.get("TALKFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
USER = "postgres"


class PostgresCluster(Service):
    """A private cluster in a folder of its own (outside pytest's root-only temp folders).

    A graceful ``stop`` is PostgreSQL's fast shutdown (SIGINT: clients are
    disconnected); ``kill`` leaves crash recovery to the next start. Call ``remove``
    at the end to delete the folder.
    """

    start_timeout = 60.0

    def __init__(self) -> None:
        # The postgres user must reach the folder: pytest's temp folders are root's alone.
        self.root = Path(tempfile.mkdtemp(prefix="talkfarm-pg-"))
        shutil.chown(self.root, USER, USER)
        self.data = self.root / "data"
        self.port = free_port()
        command = [str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                   "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                   "-c", "fsync=on", "-c", "max_connections=100"]
        super().__init__(ManagedProcess(f"postgres :{self.port}", command, self.root / "postgres.log",
                                        cwd=self.root, user=USER, stop_signal=signal.SIGINT, grace=60.0))

    @property
    def url(self) -> str:
        """The ``postgres`` database, as SQLAlchemy takes it."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` in this cluster."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        subprocess.run([str(BIN / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C"], user=USER, cwd=self.root, check=True, capture_output=True)

    def answers(self) -> bool:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres", connect_timeout=2):
            return True

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.OperationalError,)

    def create_database(self, name: str | None = None) -> str:
        """A new database in this cluster; returns its SQLAlchemy URL."""
        name = name or f"talkfarm_{secrets.token_hex(5)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_of(name)

    def remove(self) -> None:
        """Kill the cluster if it runs and delete its folder."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def scratch_database(server_url: str = SERVER_URL, prefix: str = "talkfarm_test") -> Iterator[str]:
    """A new, uniquely named database on ``server_url``'s server, dropped (even while in use) afterwards."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
