"""Revoked sessions and current rights, shared through a JetStream KV bucket and held in memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

log = structlog.get_logger("revocation")

REVOCATION_BUCKET = "acting_revocations"


async def revocation_bucket(js: JetStreamContext, *, ttl_seconds: float) -> KeyValue:
    """The bucket; entries expire once no token of that session could still be valid."""
    try:
        return await js.key_value(REVOCATION_BUCKET)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(bucket=REVOCATION_BUCKET, ttl=ttl_seconds, history=1)
        except Exception:
            return await js.key_value(REVOCATION_BUCKET)


def user_key(user_id: str) -> str:
    """The bucket key of a user's standing (acting sessions are keyed by their bare id)."""
    return f"user.{user_id}"


def org_key(org_id: str) -> str:
    """The bucket key of an organisation's standing."""
    return f"org.{org_id}"


def login_key(login_session_id: str) -> str:
    """The bucket key of an ended login session (a logout)."""
    return f"login.{login_session_id}"


_STANDING_PREFIXES = ("user.", "org.")


@dataclass(frozen=True, slots=True)
class Standing:
    """A user's or organisation's rights generation and whether it is active: tokens that carry
    a lower generation were issued before a change of rights and are refused."""

    generation: int
    active: bool = True

    def encode(self) -> bytes:
        return json.dumps({"generation": self.generation, "active": self.active}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Standing:
        if raw == b"deactivated":  # written before generations existed
            return cls(generation=0, active=False)
        try:
            data = json.loads(raw)
            generation, active = data["generation"], data["active"]
        except (ValueError, TypeError, KeyError):
            # Unreadable: refuse every token of that user or organisation rather than none.
            return cls(generation=2**62, active=False)
        if not isinstance(generation, int) or not isinstance(active, bool):
            return cls(generation=2**62, active=False)
        return cls(generation=generation, active=active)


class RevocationSet:
    """What this process knows of ended sessions and of users' and organisations' standing;
    checked on every request, no I/O."""

    def __init__(self) -> None:
        self._revoked: set[str] = set()
        self._standing: dict[str, Standing] = {}
        self.ready = asyncio.Event()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._revoked

    def add(self, key: str) -> None:
        self._revoked.add(key)

    def discard(self, key: str) -> None:
        self._revoked.discard(key)
        self._standing.pop(key, None)

    def apply(self, key: str, value: bytes) -> None:
        """A bucket entry: a standing for `user.`/`org.` keys, an ended session otherwise."""
        if key.startswith(_STANDING_PREFIXES):
            self._standing[key] = Standing.decode(value)
        else:
            self._revoked.add(key)

    def standing(self, key: str) -> Standing | None:
        return self._standing.get(key)

    def __len__(self) -> int:
        return len(self._revoked) + len(self._standing)


class RevocationWatcher:
    """Replays the bucket at start-up, then follows it; re-watches after every reconnect."""

    def __init__(self, *, js: JetStreamContext, revoked: RevocationSet, ttl: float) -> None:
        self._js = js
        self._revoked = revoked
        self._ttl = ttl
        self._rewatch = asyncio.Event()

    def on_reconnect(self) -> None:
        # A watcher's subscription may have missed updates while NATS was away.
        self._rewatch.set()

    async def run(self) -> None:
        while True:
            try:
                await self._watch_until_rewatch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("revocation_watch_failed", error=repr(exc))
                await asyncio.sleep(0.25)  # back-off before watching again

    async def _watch_until_rewatch(self) -> None:
        self._rewatch.clear()
        kv = await revocation_bucket(self._js, ttl_seconds=self._ttl)
        watcher = await kv.watchall()
        consume = asyncio.create_task(self._consume(watcher))
        rewatch = asyncio.create_task(self._rewatch.wait())
        try:
            done, _ = await asyncio.wait({consume, rewatch}, return_when=asyncio.FIRST_COMPLETED)
            if consume in done:
                consume.result()
        finally:
            for task in (consume, rewatch):
                task.cancel()
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _consume(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the initial replay is done
                self._revoked.ready.set()
            elif entry.operation in (None, "PUT") and entry.key:
                self._revoked.apply(entry.key, entry.value or b"")
            elif entry.key:  # DEL or PURGE (an entry written before generations existed)
                self._revoked.discard(entry.key)


async def publish_revocation(kv: KeyValue, session_id: str) -> None:
    await kv.put(session_id, b"ended")


def _written_generation(raw: bytes | None) -> int:
    """The generation an entry holds; -1 for one identity may overwrite (legacy or unreadable)."""
    try:
        generation = json.loads(raw or b"")["generation"]
    except (ValueError, TypeError, KeyError):
        return -1
    return generation if isinstance(generation, int) else -1


async def raise_standing(kv: KeyValue, key: str, standing: Standing) -> None:
    """Write `standing` unless the bucket already holds the same or a newer generation:
    compare-and-set, so a redelivered or late event never lowers a generation."""
    while True:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            try:
                await kv.create(key, standing.encode())
                return
            except KeyWrongLastSequenceError:
                continue  # someone wrote it meanwhile: compare again
        if _written_generation(entry.value) >= standing.generation:
            return
        try:
            await kv.update(key, standing.encode(), last=entry.revision)
            return
        except KeyWrongLastSequenceError:
            continue
