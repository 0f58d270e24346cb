"""A throwaway real PostgreSQL 16 (the pgserver wheel) for tests and benchmarks: development
only, not in the wheel."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]  # no stubs in the venv (types-psutil)
from sqlalchemy import URL

with warnings.catch_warnings():
    # pgserver computes a runtime dir at import; without XDG_RUNTIME_DIR platformdirs warns
    # and falls back to /tmp/runtime-<uid>, which is fine for its lock file.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver
    from pgserver._commands import POSTGRES_BIN_PATH

# Data dirs live here rather than under the caller's workdir: pgserver runs postgres as a non-root
# user and opens files by absolute path, so every ancestor must stay traversable. pytest resets
# /tmp/pytest-of-<user> to 0700 whenever another session starts, which makes a server inside
# tmp_path PANIC at its next checkpoint.
BASE_DIR = Path(tempfile.gettempdir()) / "onbehalf-pgserver"
SUPERUSER = "postgres"  # pgserver's initdb superuser; local auth is trust
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresServer:
    """A running server, reachable through a unix socket; `stop()` stops it and deletes its data."""

    def __init__(self, handle: pgserver.PostgresServer, run_dir: Path, link: Path) -> None:
        self._handle = handle
        self._run_dir = run_dir
        self._link = link
        info = handle.get_postmaster_info()
        if info.socket_dir is None or info.port is None:
            raise RuntimeError(f"pgserver reported no socket for {handle.pgdata}")
        self.pgdata: Path = handle.pgdata
        self.socket_dir: Path = info.socket_dir
        # No TCP listener (pgserver starts postgres with -h ""); the port only names the socket.
        self.port: int = info.port
        self.pid: int = info.pid
        self.log_path: Path = handle.log
        self._stopped = False

    def url(self, database: str = SUPERUSER) -> str:
        """Async SQLAlchemy URL (asyncpg over the unix socket) of an existing database."""
        return URL.create(
            "postgresql+asyncpg",
            username=SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        ).render_as_string(hide_password=False)

    def psql_uri(self, database: str = SUPERUSER) -> str:
        """libpq URI for psql or psycopg, e.g. for debugging a test's database by hand."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its async SQLAlchemy URL."""
        # A restricted name needs no quoting in SQL or in URLs.
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        command = [str(POSTGRES_BIN_PATH / "createdb"), "-h", str(self.socket_dir)]
        command += ["-p", str(self.port), "-U", SUPERUSER, "--", name]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {done.stderr.strip()}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown), then delete its data dir. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._handle.cleanup()  # pg_ctl -w stop, then removes pgdata (cleanup_mode="delete")
        shutil.rmtree(self._run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            if self._link.is_symlink() and self._link.readlink() == self._run_dir / "pgdata":
                self._link.unlink()

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_postgres(workdir: Path) -> PostgresServer:
    """Start a fresh server; `workdir/pgdata` becomes a symlink to its data dir (and log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with _base_lock():
        _remove_orphans()
        run_dir = Path(tempfile.mkdtemp(prefix="pg-", dir=BASE_DIR))
        # Lets a later start know when this server's owner died without stopping it.
        (run_dir / "owner").write_text(_process_identity(os.getpid()))
    link = workdir / "pgdata"
    link.unlink(missing_ok=True)
    link.symlink_to(run_dir / "pgdata")
    # Different data dirs never share a server: pgserver serialises starts with its own
    # inter-process lock and reuses a server only when the pgdata path is the same.
    # As root it runs postgres as the system user "pgserver" (created with useradd if missing).
    handle = pgserver.get_server(run_dir / "pgdata", cleanup_mode="delete")
    return PostgresServer(handle, run_dir, link)


@contextlib.contextmanager
def _base_lock() -> Iterator[None]:
    """Serialise orphan removal and run-dir creation between concurrent test sessions."""
    BASE_DIR.mkdir(mode=0o755, exist_ok=True)
    with (BASE_DIR / ".lock").open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _process_identity(pid: int) -> str:
    """pid plus start time, so a recycled pid is not mistaken for the original owner.

    The start time is the kernel's count of clock ticks since boot, not psutil's create_time():
    that adds the boot time as wall-clock seconds, which moves when NTP adjusts the clock, and a
    live owner that looked dead had its server deleted under it by another session.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (starttime); the command name before it is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{pid} {fields[19]}"


def _owner_alive(owner_file: Path) -> bool:
    try:
        recorded = owner_file.read_text()
        pid = int(recorded.split()[0])
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return False
    return _process_identity(pid) == recorded


def _remove_orphans() -> None:
    """Stop and delete servers whose owning process died (e.g. a killed test session)."""
    for run_dir in BASE_DIR.glob("pg-*"):
        if _owner_alive(run_dir / "owner"):
            continue
        pid_file = run_dir / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, psutil.NoSuchProcess):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            if postmaster.name() == "postgres":
                postmaster.send_signal(signal.SIGINT)  # "fast" shutdown
                _wait_gone(postmaster, timeout=10.0)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_gone(process: psutil.Process, timeout: float) -> None:
    # Our init does not reap orphans, so a stopped postmaster can linger as a zombie.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    process.kill()
