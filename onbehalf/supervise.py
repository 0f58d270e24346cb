"""Keep a running stack alive: a process that dies is restarted with back-off, the rest serve on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from onbehalf.stack import Stack, StackError

# A process that stayed up this long has recovered: its next crash starts the back-off afresh.
HEALTHY_AFTER_SECONDS = 30.0


@dataclass
class _Restarts:
    attempts: int = 0
    due: float = 0.0
    started: float = 0.0


class Supervisor:
    """Call `check()` periodically; it restarts what died once its back-off has passed.

    NATS comes back on the same port with the same store and configuration, so the services'
    clients reconnect by themselves; a service comes back with the same port and database, its
    outbox and durable consumers catching up on what happened meanwhile.
    """

    def __init__(
        self,
        stack: Stack,
        *,
        say: Callable[[str], None],
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stack = stack
        self._say = say
        self._first = first_backoff
        self._max = max_backoff
        self._clock = clock
        self._restarts: dict[str, _Restarts] = {}

    def check(self) -> list[str]:
        """Restart every process that is down and due; returns their names."""
        restarted = []
        nats = self._stack.nats
        if nats is not None and nats.process.poll() is not None and self._due("nats"):
            self._restart("nats", nats.process.returncode, self._stack.start_nats)
            restarted.append("nats")
        for name in list(self._stack.services):
            # Looked up afresh: restarting a service restarts whatever shares its process.
            service = self._stack.services[name]
            # Services sharing a process (ONBEHALF_COLOCATE) go down and come back as one.
            label = "+".join(self._stack.group_of(name))
            if service.process.poll() is not None and self._due(label):
                code = service.process.returncode

                def start(name: str = name) -> object:
                    return self._stack.start_one(name, wait=False)

                self._restart(label, code, start)
                restarted.append(label)
        return restarted

    def _due(self, name: str) -> bool:
        state = self._restarts.setdefault(name, _Restarts())
        now = self._clock()
        if state.started and now - state.started > HEALTHY_AFTER_SECONDS:
            state.attempts = 0  # it had recovered; this is a new crash, not the same one
        if not state.due:
            state.due = now + (self._first * 2**state.attempts if state.attempts else 0.0)
            state.due = min(state.due, now + self._max)
        return now >= state.due

    def _restart(self, name: str, code: int | None, start: Callable[[], object]) -> None:
        state = self._restarts[name]
        state.attempts += 1
        self._say(f"{name} exited (code {code}); restarting it (attempt {state.attempts})")
        try:
            start()
        except StackError as exc:
            self._say(f"{name} did not start: {exc}")
        state.started = self._clock()
        state.due = 0.0
