"""A real daphne in a subprocess, on its own database, for tests that need the whole server.

pytest-django's ``live_server`` runs the app in a thread of the test process, so it shares the
test's database connection and event loop; schema fuzzing and fault tests need what a
deployment has instead: a separate server process, reached over a socket, that survives (or
not) its database and Redis going away. :func:`seed` prepares that server's database in a
subprocess too, so the test process never holds a connection to it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAPHNE = Path(sys.executable).parent / "daphne"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 180, process: subprocess.Popen | None = None) -> None:
    """Until ``port`` accepts connections (a loaded 2-core CI box needs a while to import the
    app), failing early when ``process`` has died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


def server_env(scratch: Path, **overrides: str) -> dict[str, str]:
    """The environment of a server process: its own SQLite database and store under ``scratch``.

    ``overrides`` (DATABASE_URL, REDIS_URL, ...) replace or add variables; REDIS_URL is dropped
    unless given, so a developer's shell never points a test server at a shared Redis.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "bmadcc_web.settings",
        "DATABASE_URL": f"sqlite:///{scratch / 'db.sqlite3'}",
        "SLIDE_STORAGE_DIR": str(scratch / "store"),
        "EXPORT_DIR": str(scratch / "exports"),
        "MODEL_DIR": str(scratch / "models"),
        "BMADCC_VAR_DIR": str(scratch / "var"),
        "SECRET_KEY": "live-test-only",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
        "Q_NAME": f"live-{scratch.name}",
    }
    return env | overrides


def seed(env: dict[str, str], script: str) -> dict:
    """Run ``script`` (Python, after ``django.setup()`` and ``migrate``) against ``env``'s database.

    The script prints one JSON line last; that is returned.
    """
    prelude = (
        "import django, json\ndjango.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def daphne(env: dict[str, str], log: Path, port: int | None = None) -> Iterator[str]:
    """A daphne serving the app with ``env``; yields its base URL and stops it afterwards."""
    port = port or free_port()
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "bmadcc_web.asgi:application"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process=server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- private PostgreSQL and Redis ---------------------------------------------------------------
# Fault tests restart these; a shared server (a developer's, CI's service container) must never
# be the one restarted, so each test run starts its own on a free port, in a temporary folder.
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def _as_postgres(cmd: list[str]) -> list[str]:
    """``initdb`` and ``postgres`` refuse to run as root: run them as the postgres account."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    """A throwaway PostgreSQL cluster, trust auth on 127.0.0.1:``port``; :meth:`close` removes it.

    Its folder is a fresh one under the system temporary folder, not the test's (pytest's are
    private to root, and the server runs as the postgres account).
    """

    def __init__(self) -> None:
        if PG_BIN is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.folder = Path(tempfile.mkdtemp(prefix="bmadcc-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.log = self.folder / "postgres.log"
        if os.geteuid() == 0:
            os.chown(self.folder, *_postgres_ids())
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres(initdb), check=True, capture_output=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self._pg_ctl("start", "-w", "-t", "120", "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        """Fast shutdown: every client's session ends at once, as in a crash or a failover."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "fast")

    def _pg_ctl(self, *args: str) -> None:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=180)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


class PrivateRedis:
    """A throwaway redis-server on 127.0.0.1:``port``, no persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with (self.folder / "redis.log").open("ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 30, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None
