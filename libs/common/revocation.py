"""Revoked acting sessions, shared through a JetStream KV bucket and held in memory by every service."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
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
    """The bucket key of a deactivated user (acting sessions are keyed by their bare id)."""
    return f"user.{user_id}"


class RevocationSet:
    """The ended acting sessions and deactivated users this process knows of; checked on every
    request, no I/O."""

    def __init__(self) -> None:
        self._revoked: set[str] = set()
        self.ready = asyncio.Event()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._revoked

    def add(self, key: str) -> None:
        self._revoked.add(key)

    def discard(self, key: str) -> None:
        self._revoked.discard(key)

    def __len__(self) -> int:
        return len(self._revoked)


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
                self._revoked.add(entry.key)
            elif entry.key:  # DEL or PURGE: a reactivated user
                self._revoked.discard(entry.key)


async def publish_revocation(kv: KeyValue, session_id: str) -> None:
    await kv.put(session_id, b"ended")


async def set_user_revoked(kv: KeyValue, user_id: str, *, revoked: bool) -> None:
    """A deactivated user's tokens are refused everywhere; reactivation lifts that."""
    if revoked:
        await kv.put(user_key(user_id), b"deactivated")
    else:
        # A delete marker: watchers see DEL and forget the key (none there is fine too).
        await kv.delete(user_key(user_id))
