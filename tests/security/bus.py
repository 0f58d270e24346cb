"""How the security tests reach the bus: the one place that knows how a NATS client connects."""

from __future__ import annotations

import nats
from nats.aio.client import Client

from onbehalf.stack import Stack


async def bus_client(stack: Stack, user: str = "orders") -> Client:
    """A NATS connection with the rights of `user` (a service name). The bus has no per-service
    credentials yet, so today every client may do anything: `user` records whose rights an
    attack assumes, and is where those credentials will come from."""
    return await nats.connect(stack.nats_url, allow_reconnect=False, connect_timeout=5)
