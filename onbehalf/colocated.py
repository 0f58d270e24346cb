"""Several services in one process: one event loop, one uvicorn server per service on its own port,
each app built from its own environment (settings, database, NATS credentials, signing key)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop
from fastapi import FastAPI

from libs.common import tracing
from onbehalf.server import QuietServer, collector_paused

# The launcher's one input (onbehalf/stack.py writes it): {"<service>": {"port": n, "env": {...}}}
# in the order the services start.
SPEC_VARIABLE = "ONBEHALF_COLOCATED"
# Services that may share a process. Identity stays alone: it starts first, since the others
# fetch its key set as they start, and it holds the token-signing keys.
COLOCATABLE = ("catalog", "cart", "orders", "audit")
STARTUP_FAILURE = 3
USAGE_ERROR = 2


@dataclass(frozen=True)
class Member:
    """One service of the process: its port and the environment it would have had alone."""

    name: str
    port: int
    env: Mapping[str, str]


def parse_spec(text: str) -> list[Member]:
    """The members named by the spec; ValueError saying what is wrong with it."""
    if not text.strip():
        raise ValueError(f"{SPEC_VARIABLE} is not set (docs/operations.md, 'Sharing a process')")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{SPEC_VARIABLE} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ValueError(
            f'{SPEC_VARIABLE} must be an object: {{"<service>": {{"port": n, "env": {{}}}}}}'
        )
    members = [_member(name, entry) for name, entry in spec.items()]
    unknown = [m.name for m in members if m.name not in COLOCATABLE]
    if unknown or len(members) < 2:
        raise ValueError(
            f"co-locate two or more of {', '.join(COLOCATABLE)}; got {[m.name for m in members]}"
        )
    return members


def _member(name: str, entry: Any) -> Member:
    port = entry.get("port") if isinstance(entry, dict) else None
    env = entry.get("env", {}) if isinstance(entry, dict) else None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"{SPEC_VARIABLE}: {name} needs a port (an integer 1-65535)")
    if not isinstance(env, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in env.items()
    ):
        raise ValueError(f"{SPEC_VARIABLE}: {name}'s env must map names to strings")
    return Member(name=name, port=port, env=env)


@contextlib.contextmanager
def _environment(overrides: Mapping[str, str]) -> Iterator[None]:
    # Settings are read from the environment when an app is built (create_app), and only then:
    # each app sees the environment it would have had in a process of its own.
    saved = dict(os.environ)
    os.environ.update(overrides)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _build(member: Member) -> FastAPI:
    with _environment(member.env):
        app: FastAPI = importlib.import_module(f"services.{member.name}.app").create_app()
    return app


class _Server(QuietServer):
    """A uvicorn server that leaves signals to the launcher: uvicorn's own handler would stop
    only the server that installed it last."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: _Server) -> None:
    # uvicorn exits the process when its app cannot start; here the other services are stopped
    # first (their lifespans close NATS and hand over what their relays hold).
    with contextlib.suppress(SystemExit):
        await server.serve()


async def serve(members: Sequence[Member]) -> int:
    """Serve until SIGTERM or SIGINT, or until one member stops (the process is one unit, so
    its supervisor restarts all of them together). Returns the exit code."""
    servers: list[tuple[_Server, contextvars.Context]] = []
    # Each app's configure() (as it is built, in its own context) gives it a tracer provider of
    # its own: its spans carry its own service name, as when it runs alone.
    tracing.share_process()
    for member in members:
        # Each app is built, started and served in a context of its own, so that what a
        # service binds there (its name on every log line) stays its own.
        context = contextvars.copy_context()
        with collector_paused():
            app = context.run(_build, member)
        config = uvicorn.Config(
            app,
            host=member.env.get("ONBEHALF_HOST", "127.0.0.1"),
            port=member.port,
            access_log=False,
            log_level="warning",
            log_config=None,  # the services configure logging themselves (libs/common/logging)
        )
        servers.append((_Server(config), context))

    def stop_all() -> None:
        for server, _ in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_all)
    tasks = [loop.create_task(_serve(server), context=context) for server, context in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop_all()
    await asyncio.gather(*tasks, return_exceptions=True)
    return 0 if all(server.started for server, _ in servers) else STARTUP_FAILURE


def main() -> None:
    try:
        members = parse_spec(os.environ.get(SPEC_VARIABLE, ""))
    except ValueError as exc:
        # Written by hand (outside the stack): one line saying what is wrong, no traceback.
        print(f"onbehalf.colocated: {exc}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    sys.exit(uvloop.run(serve(members)))


if __name__ == "__main__":
    main()
