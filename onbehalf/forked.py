"""Service processes forked from a fork server that has imported their libraries once.

A service process spends most of its start-up CPU importing its libraries (SQLAlchemy, FastAPI,
pydantic, nats-py, Alembic, OpenTelemetry...: ≈ 1.2 of the 1.5 s an import of cart takes on
this machine). The launcher (onbehalf/stack.py, behind `make run` and every test's stack) starts
services often: a whole system is six processes, and a test run starts some thirty systems.
So the launcher starts one fork server (`python -m onbehalf.forked`, a child of its own) that
imports the third-party libraries below once; each service process is a fork of it that then
becomes what `python -m <module> <args>` would have been: it imports our own code (libs/,
services/) fresh, reads its own environment, writes its own log, and ends through the
interpreter's normal exit (atexit handlers, thread joins), so a changed policy file, setting or
module is read as by a new interpreter.

Only third-party libraries are preloaded: nothing of ours runs in the fork server, so nothing
of the launcher's (its environment, a module-level value) reaches a service through it.
multiprocessing's "forkserver" start method does the same preloading, but it makes every child
import the launcher's main script again first, which breaks any script that starts a stack at
the top level (docs/decisions.md). Kubernetes and docker-compose start `python -m
onbehalf.server` directly: one process per container, nothing to share.

The protocol, one JSON object a line: the launcher writes a request ({"module", "args", "env",
"cwd", "log_path", "title"}) to the server's stdin; the server answers {"started": pid} on its
stdout in the same order, and {"exited": pid, "code": n} when a child ends (n negative for the
signal that ended it, as subprocess reports it). The server ends when its stdin closes, and its
children with it (their parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# What service processes import from outside the project at start-up, and on their first
# request or migration. A name missing here is imported by the service itself, as before.
PRELOAD = (
    "aiosmtplib",
    "aiosqlite",
    "alembic.autogenerate",
    "alembic.command",
    "alembic.config",
    "alembic.ddl.postgresql",
    "alembic.ddl.sqlite",
    "alembic.migration",
    "alembic.operations",
    "alembic.runtime.migration",
    "alembic.script",
    "asyncpg",
    "cloudevents.core.formats.json",
    "cloudevents.core.v1.event",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "cryptography.hazmat.primitives.serialization",
    "fastapi",
    "fastapi.encoders",
    "fastapi.openapi.utils",
    "fastapi.responses",
    "fastapi.security",
    "fastapi.staticfiles",
    "fastapi.templating",
    "fastapi_offline",
    "httpx",
    "jinja2",
    "jwt",
    "jwt.algorithms",
    "nacl.signing",
    "nats",
    "nats.js",
    "nats.js.kv",
    "opentelemetry.sdk.resources",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.trace.propagation.tracecontext",
    "oso",
    "polar",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "structlog",
    "tenacity",
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvloop",
    "zxcvbn",
)

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# How long the launcher waits for the server to fork (it imports PRELOAD first, ≈ 1.5 s).
START_TIMEOUT_SECONDS = 60.0


def die_with_parent() -> None:
    """If the parent dies (a test run killed by a timeout, the fork server with its launcher),
    this process is killed instead of living on as an orphan holding ports and CPU. SIGKILL,
    not SIGTERM: nobody is left to escalate, and a service whose graceful shutdown waits on a
    NATS that went down with the launcher would never end (seen after a killed test run).
    Every service survives a kill by design (transactions, the outbox)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _set_title(title: str) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, title.encode()[:15])


class ForkServerError(RuntimeError):
    """The fork server ended, or did not answer a request in time."""


class ForkServer:
    """The launcher's end: one server process, a thread reading its answers."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "onbehalf.forked"],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # No parent-death signal here: it would come when the thread that started the
            # server ends. The launcher's death closes the server's stdin, which ends it.
        )
        self._changed = threading.Condition()
        self._requests = threading.Lock()
        self._started: list[int] = []
        self._exits: dict[int, int] = {}
        self._ended = False
        threading.Thread(target=self._read, name="fork-server", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return not self._ended and self._process.poll() is None

    def start(
        self,
        module: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        title: str,
    ) -> ForkedProcess:
        """`python -m module args` with exactly `env` as its environment, in `cwd`, stdout and
        stderr appended to `log_path`; `title` is its name in ps and top (the first 15 bytes)."""
        request = {
            "module": module,
            "args": list(args),
            "env": dict(env),
            "cwd": str(cwd),
            "log_path": str(log_path),
            "title": title,
        }
        with self._requests:  # answers come in the order of the requests
            assert self._process.stdin is not None
            with self._changed:
                answered = len(self._started)
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except OSError as exc:
                raise ForkServerError(f"the fork server has ended: {exc}") from exc
            with self._changed:
                if (
                    not self._changed.wait_for(
                        lambda: len(self._started) > answered or self._ended, START_TIMEOUT_SECONDS
                    )
                    or len(self._started) == answered
                ):
                    raise ForkServerError(f"the fork server did not start {module}")
                pid = self._started[answered]
        return ForkedProcess(pid, server=self, module=module)

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exit_code(pid)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while (code := self._exit_code(pid)) is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                # Once the server has ended nobody notifies: look again every 50 ms.
                self._changed.wait(left if not self._ended else min(left or 0.05, 0.05))
            return code

    def _exit_code(self, pid: int) -> int | None:
        if pid in self._exits:
            return self._exits[pid]
        if self._ended and not _exists(pid):
            # The server died before telling: its children got the parent-death signal.
            return -signal.SIGKILL
        return None

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            with self._changed:
                if "started" in message:
                    self._started.append(message["started"])
                else:
                    self._exits[message["exited"]] = message["code"]
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()


def _exists(pid: int) -> bool:
    """Whether `pid` still runs: a zombie no longer does (with no reaper it may stay one)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


class ForkedProcess:
    """A forked service process, with the part of `subprocess.Popen` the launcher, its
    supervisor and the tests use: pid, poll(), returncode, wait(), send_signal(), kill()."""

    def __init__(self, pid: int, *, server: ForkServer, module: str) -> None:
        self.pid = pid
        self._server = server
        self._module = module

    @property
    def returncode(self) -> int | None:
        return self._server.exit_code(self.pid)

    def poll(self) -> int | None:
        return self._server.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        code = self._server.wait(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(["python", "-m", self._module], timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This launcher's fork server, started on the first call (and again if it has ended)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            _server = ForkServer()
        return _server


# The server's end.


def _preload() -> None:
    for name in PRELOAD:
        # One that fails here fails again in the child that imports it, in that child's log.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    # What was imported lives as long as every child: keep the collector off it, so that
    # collections in the children do not touch (and copy) the pages they share.
    gc.collect()
    gc.freeze()


def _send(message: dict[str, Any]) -> None:
    data = json.dumps(message).encode() + b"\n"
    while data:
        data = data[os.write(_replies, data) :]


# The answers' pipe: stdout as the launcher gave it. Stdout itself then points at stderr, so
# that nothing a library prints can be read as an answer.
_replies = -1
_server_pid = -1


def _serve() -> dict[str, Any]:
    """Fork a child for each request until stdin closes; returns only in a child, its request."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd is what wakes the loop
    # Ctrl+C in `make run` reaches the whole process group: the launcher stops the services,
    # and the server must live on to tell it when each has ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap()
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                sys.exit(0)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    os.close(wake_r)
                    os.close(wake_w)
                    os.close(_replies)
                    return dict(request)
                _send({"started": pid})
        _reap()


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as exc:  # pragma: no cover - EINTR is retried by Python
            if exc.errno != errno.EINTR:
                raise
            continue
        if pid == 0:
            return
        _send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become(request: dict[str, Any]) -> None:
    """In the forked child: what `python -m module args` started by the launcher would be."""
    die_with_parent()
    if os.getppid() != _server_pid:  # the server died before the signal was armed
        os._exit(1)
    _set_title(request["title"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    log = os.open(request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path.insert(0, request["cwd"])  # as `python -m` puts the working directory first
    sys.argv = [request["module"], *request["args"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


def main() -> None:
    global _replies, _server_pid
    _server_pid = os.getpid()
    _replies = os.dup(1)
    os.dup2(2, 1)
    _preload()
    _become(_serve())


if __name__ == "__main__":
    main()
