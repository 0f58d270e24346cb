"""How the security tests reach the bus: the one place that knows how a NATS client connects."""

from __future__ import annotations

import nats
from nats.aio.client import Client

from devtools.stacks import connect_bus
from onbehalf.stack import Stack


async def bus_client(stack: Stack, user: str = "orders") -> Client:
    """A NATS connection with the credentials and rights of bus user `user` (a service name,
    "operator" or "provisioner"), exactly as that service connects."""
    return await connect_bus(stack, user)


async def anonymous_client(stack: Stack) -> Client:
    """What any process that reaches the port would try first: no credentials at all."""
    return await nats.connect(stack.nats_url, allow_reconnect=False, connect_timeout=5)
