"""Passwords: scrypt hashing off the event loop in a small bounded pool, and the password policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

_N, _R, _P = 2**14, 8, 1

# zxcvbn's list of the 30,000 most common leaked passwords (lower-case).
COMMON_PASSWORDS: frozenset[str] = frozenset(FREQUENCY_LISTS["passwords"])
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
T = TypeVar("T")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(
        [
            "scrypt",
            str(_N),
            str(_R),
            str(_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt_b64),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=32,
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def _timed_verify(password: str, stored: str) -> tuple[bool, float]:
    started = time.perf_counter()
    return verify_password(password, stored), time.perf_counter() - started


# Kept for callers that must spend a hash's time on an unknown account synchronously.
DUMMY_HASH = hash_password(secrets.token_hex(8))


def check_password_policy(password: str, *, email: str, min_length: int = 12) -> str | None:
    """Why `password` may not be used by the owner of `email`, or None when it may."""
    if len(password) < min_length:
        return f"the password must have at least {min_length} characters"
    lowered = password.lower()
    local = email.strip().lower().split("@", 1)[0]
    if lowered == email.strip().lower() or (len(local) >= 3 and local in lowered):
        return "the password must not contain the e-mail address or its local part"
    # "Password123!" is "password" with decoration: strip digits and symbols at both ends.
    core = _EDGES.sub("", lowered)
    if lowered in COMMON_PASSWORDS or (core and core in COMMON_PASSWORDS):
        return "the password is on a list of commonly used passwords"
    if len(set(password)) < 4:
        return "the password repeats too few different characters"
    return None


class PasswordPool:
    """scrypt (tens of ms of CPU, GIL released) on at most `workers` threads.

    The semaphore keeps waiting work on the event loop rather than in the executor's queue,
    so a request that gives up (client gone) never leaves a hash behind it to compute."""

    def __init__(self, workers: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrypt")
        self._slots = asyncio.Semaphore(workers)
        # A running mean of one verification, so a login for an unknown account can take
        # as long as one for a known account without spending the CPU.
        self.mean_seconds = 0.05

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def verify(self, password: str, stored: str) -> bool:
        ok, seconds = await self._run(_timed_verify, password, stored)
        self.mean_seconds = 0.9 * self.mean_seconds + 0.1 * seconds
        return ok

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class AddressGate:
    """At most one login attempt per client address at a time: a flood from one address
    queues behind itself instead of filling the hashing pool and the database ahead of
    everyone else."""

    def __init__(self) -> None:
        self._gates: dict[str, tuple[asyncio.Lock, int]] = {}
        self._reported: dict[str, float] = {}

    def report_due(self, key: str, *, quiet_seconds: float) -> bool:
        """True once per `quiet_seconds` for `key`: a throttled burst is audited once, not once
        per refused request (each audit is a write and an event, which a flood would multiply)."""
        now = time.monotonic()
        if self._reported.get(key, 0.0) > now:
            return False
        if len(self._reported) > 10_000:
            self._reported = {k: t for k, t in self._reported.items() if t > now}
        self._reported[key] = now + quiet_seconds
        return True

    @asynccontextmanager
    async def turn(self, address: str) -> AsyncIterator[None]:
        lock, users = self._gates.get(address, (asyncio.Lock(), 0))
        self._gates[address] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._gates[address]
            if users <= 1:
                del self._gates[address]
            else:
                self._gates[address] = (lock, users - 1)
