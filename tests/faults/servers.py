"""Throw-away servers a fault test may break: a PostgreSQL cluster and a redis-server.

Never the machine's shared PostgreSQL (127.0.0.1:5432) or Redis (6379): each
server here runs on its own free port from a data directory in /tmp, and is
ended by its own pid (the postmaster's from `postmaster.pid`, redis-server's
from Popen), never by name, also when the test fails.

initdb and postgres refuse to run as root; as root the binaries run as the
`postgres` system user (`runuser`), which must own the data directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("NEZUKO_PG_BIN", "/usr/local/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_OWNER = "postgres"  # the account that runs the cluster when the tests run as root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_available() -> str | None:
    """None when a cluster can be started here, else the reason it cannot."""
    for name in ("initdb", "pg_ctl"):
        if not (PG_BIN / name).exists():
            return f"{PG_BIN / name} not found (set NEZUKO_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_OWNER)
        except KeyError:
            return f"running as root and there is no {PG_OWNER!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def redis_available() -> str | None:
    return None if Path(REDIS_SERVER).exists() else "redis-server not found"


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_OWNER, "--", *command]
    return command


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    owner = pwd.getpwnam(PG_OWNER)
    for root, dirs, files in os.walk(path):
        os.chown(root, owner.pw_uid, owner.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1:`port`.

    `stop(mode="immediate")` is a crash as the application sees it (connections
    cut, no checkpoint); `start()` brings it back on the same port.
    """

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.log = root / "postgres.log"

    @classmethod
    def create(cls, template: Path | None = None) -> PostgresCluster:
        """A new cluster: `initdb`, or a copy of a stopped cluster's data directory."""
        root = Path(tempfile.mkdtemp(prefix="nezuko-pg-"))
        cluster = cls(root, free_port())
        try:
            if template is None:
                _chown_tree(root)
                subprocess.run(  # noqa: S603 - fixed argv, no shell
                    _as_owner([str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--no-sync"]),
                    check=True, capture_output=True,
                )
            else:
                # copy2 keeps the 0700 mode postgres insists on; the owner is set again.
                shutil.copytree(template, cluster.data, symlinks=True)
                _chown_tree(root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cluster

    def url(self, database: str = "nezuko") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (first line of postmaster.pid)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def start(self) -> None:
        # No Unix socket: nothing to collide with the shared server's. fsync off: the
        # machine does not crash in these tests, so the OS keeps what was written. But
        # synchronous_commit stays on, as in production: with it off, an immediate stop
        # loses commits already acknowledged, which no application can make up for.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c fsync=off -c full_page_writes=off")
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                       "-o", options, "-w", "-t", "60", "start"]),
            check=True, capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        if self.pid is None:
            return
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                       "stop"]),
            check=False, capture_output=True,
        )

    def psql(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def destroy(self) -> None:
        """Stop (immediately, then by pid if pg_ctl could not) and delete the files."""
        self.stop("immediate")
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster(template: Path | None = None) -> Iterator[PostgresCluster]:
    """A started cluster, always stopped and deleted afterwards."""
    cluster = PostgresCluster.create(template)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


class RedisServer:
    """A redis-server with no persistence on its own port; pause() freezes it (SIGSTOP)."""

    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.process = process
        self.paused = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @classmethod
    def start(cls, port: int | None = None) -> RedisServer:
        """On `port` (a free one when None)."""
        port = port or free_port()
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        server = cls(port, process)
        server._wait_ready()
        return server

    def _wait_ready(self, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.5
            ) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING")

    def pause(self) -> None:
        """Freeze the server: connections stay open, nothing is answered (a partition)."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()
