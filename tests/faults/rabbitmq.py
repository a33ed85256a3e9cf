"""A private RabbitMQ node beside the machine's own, on its own ports and data folder.

Debian's RabbitMQ 3.10 runs a second node when it gets, through the environment:
a node name of its own (``RABBITMQ_NODENAME=<unique>@localhost``), the AMQP and
Erlang distribution ports, its own Mnesia and log folders, its own config and
enabled-plugins files and, so that the machine's ``/etc/rabbitmq/rabbitmq-env.conf``
(which names the system node) is not read, its own ``RABBITMQ_CONF_ENV_FILE``. The
port mapper (epmd) is the machine's, shared by both nodes. ``HOME`` is the node's
folder, which holds the Erlang cookie that the node and the CLI tools (``ctl``,
``diagnostics``) share. The server is started through
``/usr/lib/rabbitmq/bin/rabbitmq-server``: Debian's ``/usr/sbin`` wrapper switches
to the ``rabbitmq`` user, who cannot write the test's folder.

The CLI tools take the distribution port plus 10000 for themselves, so that port is
drawn below 30000.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterable

from kombu import Connection
from kombu.exceptions import OperationalError

from tests.faults.ports import free_port, free_port_in
from tests.faults.process import ManagedProcess, wait_until
from tests.faults.service import Service

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CLI_TIMEOUT = 60.0


def _tool(name: str) -> str:
    beside = SERVER.parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install rabbitmq-server)")
    return found


class RabbitNode(Service):
    """A RabbitMQ node named ``tf<hex>@localhost``; ``management=True`` adds the HTTP API on a free port."""

    start_timeout = 120.0

    def __init__(self, root: Path, management: bool = False) -> None:
        self.root = root
        self.node = f"tf{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        self.dist_port = free_port_in(20000, 30000)
        self.management_port = free_port() if management else None
        self.publishers_blocked = False
        self.filled: set[str] = set()  # queues that refuse publishes (``fill_queue``)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "HOME": str(root),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        self.env = env
        # SIGTERM to the group: the script and the Erlang VM, which shuts down cleanly on it.
        super().__init__(ManagedProcess(f"rabbitmq {self.node}", [_tool(SERVER.name)], root / "rabbitmq.out",
                                        env=env, cwd=root, signal_group=True, stop_signal=signal.SIGTERM,
                                        grace=60.0))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def management_url(self) -> str:
        """The HTTP API's base URL, as ``broker.management_url`` wants it."""
        if self.management_port is None:
            raise RuntimeError("this node was started without the management plugin")
        return f"http://guest:guest@127.0.0.1:{self.management_port}/api/"

    def prepare(self) -> None:
        self.publishers_blocked = False  # a watermark set at run time does not outlive the node
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = self.root / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
            cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("# empty: the environment says it all\n")
        config = [f"listeners.tcp.local = 127.0.0.1:{self.port}",
                  "log.file = false", "log.console = true", "log.console.level = info"]
        plugins = "[]."
        if self.management_port is not None:
            config += [f"management.tcp.port = {self.management_port}", "management.tcp.ip = 127.0.0.1"]
            plugins = "[rabbitmq_management]."
        else:
            config.append("collect_statistics = none")
        (self.root / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        (self.root / "enabled_plugins").write_text(plugins + "\n")

    def answers(self) -> bool:
        # ``ping`` says the VM runs and is registered; the AMQP listener opens a little later.
        if self.diagnostics("ping", "-t", "5").returncode != 0:
            return False
        with Connection(self.url, connect_timeout=2) as conn:
            conn.connect()
        return True

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return (OperationalError, subprocess.TimeoutExpired)

    def block_publishers(self) -> None:
        """Raise the memory alarm (a high watermark of 0): every connection that publishes is blocked, its
        publishes wait unconfirmed, while connecting, declaring and consuming go on. Returns once the alarm holds."""
        self._checked(self.ctl("set_vm_memory_high_watermark", "0"))
        self.publishers_blocked = True
        wait_until(lambda: self.diagnostics("check_alarms").returncode != 0, 30, "the memory alarm",
                   detail=self.process.log_tail)

    def unblock_publishers(self) -> None:
        """Clear the memory alarm that ``block_publishers`` raised (the default watermark, 0.4); a no-op
        when none was raised. Returns once no alarm holds."""
        if not self.publishers_blocked or not self.process.running:
            return
        self._checked(self.ctl("set_vm_memory_high_watermark", "0.4"))
        self.publishers_blocked = False
        wait_until(lambda: self.diagnostics("check_alarms").returncode == 0, 30, "the memory alarm to clear",
                   detail=self.process.log_tail)

    def fill_queue(self, queue: str) -> None:
        """Make ``queue`` refuse every publish, as if it were full: a policy of ``max-length`` 0, which with
        the stage queues' ``reject-publish`` overflow nacks each new message. The messages it holds stay
        and are delivered. Policies outlive a restart of the node: ``unfill_queue`` removes it."""
        self._checked(self.ctl("set_policy", "--apply-to", "queues", self._policy(queue), f"^{re.escape(queue)}$",
                               json.dumps({"max-length": 0})))
        self.filled.add(queue)

    def unfill_queue(self, queue: str) -> None:
        """Remove the policy of ``fill_queue``: the queue takes messages again."""
        self._checked(self.ctl("clear_policy", self._policy(queue)))
        self.filled.discard(queue)

    @staticmethod
    def _policy(queue: str) -> str:
        return f"full-{queue}"

    def close_connections_from(self, ports: Iterable[int]) -> int:
        """Close the client connections whose peer (client) port is one of ``ports``, as the broker does with a
        connection it gives up on; what it had sent and the broker had not read yet is dropped. Returns how many."""
        wanted = {str(port) for port in ports}
        closed = 0
        for line in self._checked_out(self.ctl("list_connections", "pid", "peer_port")).splitlines():
            fields = line.split()
            # One that closed meanwhile fails to close again: not counted.
            if len(fields) == 2 and fields[1] in wanted:
                closed += self.ctl("close_connection", fields[0], "closed by a fault test").returncode == 0
        return closed

    @classmethod
    def _checked_out(cls, done: subprocess.CompletedProcess[str]) -> str:
        cls._checked(done)
        return done.stdout

    @staticmethod
    def _checked(done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(done.args)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <node> ARGS`` (e.g. ``ctl("list_queues", "name", "messages")``)."""
        return self._cli("rabbitmqctl", args)

    def diagnostics(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rabbitmq-diagnostics -n <node> ARGS``."""
        return self._cli("rabbitmq-diagnostics", args)

    def _cli(self, tool: str, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_tool(tool), "-q", "-n", self.node, *args], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=CLI_TIMEOUT)
