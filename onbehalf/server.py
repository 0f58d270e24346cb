"""Runs one service's app under uvicorn with a server loop that wakes once a second, not ten times.

`python -m onbehalf.server services.cart.app:create_app --host 0.0.0.0 --port 8003`: what the
stack launcher, `onbehalf serve`, docker-compose and the Kubernetes manifests start.

uvicorn's own loop wakes every 0.1 s to see whether it should stop: ten wake-ups a second in
every idle service, ≈ 2 ms of CPU a second when this machine's timers are dear and too little to
measure when it is quiet (docs/decisions.md). Here the loop sleeps until it is asked to stop (by
a signal or by whoever sets `should_exit`) or until the next second, when uvicorn refreshes its
`Date` header as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
from collections.abc import Iterator, Sequence

import uvicorn

# uvicorn's exit code when the app did not start (uvicorn.main.STARTUP_FAILURE).
STARTUP_FAILURE = 3


class QuietServer(uvicorn.Server):
    """A uvicorn server whose main loop waits on an event instead of polling."""

    # Seconds between wake-ups of an idle server: the Date header's resolution.
    wake_seconds: float = 1.0

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        # Set by uvicorn's signal handler, by onbehalf.colocated for all its servers at once,
        # or by a test: each must wake the loop now, not at its next second.
        self._exit_requested = value
        if value and self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # on_tick's once-a-second work (the Date header, the notify callback) runs at tick 0.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.wake_seconds)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a service is imported and built: that
    allocates hundreds of thousands of objects and none of them is garbage, so the collections
    it would trigger are pure cost (≈ a tenth of a service's start-up CPU). The service's
    start-up then collects once and freezes what it built (libs/common/runtime.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run(app: str, *, host: str, port: int, log_level: str = "info") -> int:
    """Serve `app` ("module:factory") until SIGTERM or SIGINT; the process's exit code."""
    config = uvicorn.Config(
        app,
        factory=True,
        host=host,
        port=port,
        access_log=False,
        log_level=log_level,
        # The services configure logging themselves (libs/common/logging.py).
        log_config=None,
    )
    server = QuietServer(config)
    with collector_paused():
        config.load()
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C while shutting down
        server.run()
    return 0 if server.started else STARTUP_FAILURE


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m onbehalf.server", description=__doc__)
    parser.add_argument("app", help='the app factory, e.g. "services.cart.app:create_app"')
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info", help="uvicorn's own lines")
    args = parser.parse_args(argv)
    sys.exit(run(args.app, host=args.host, port=args.port, log_level=args.log_level))


if __name__ == "__main__":
    main()
