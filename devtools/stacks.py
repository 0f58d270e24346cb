"""What tests and benchmarks do to a running stack beyond what `onbehalf run` needs of it:
connect to its bus as one of its users, hand a tool a user's key, start another replica, put
services on a PostgreSQL of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from nats.aio.client import Client as NATS

from devtools.postgres import start_postgres
from libs.common.bus_permissions import OPERATOR
from onbehalf.nats_setup import connect_as
from onbehalf.stack import (
    ServiceProcess,
    Stack,
    StackError,
    free_port,
    start_colocated,
    start_service,
    start_stack,
    wait_healthy,
)


async def connect_bus(stack: Stack, user: str = OPERATOR) -> NATS:
    """A NATS client as one of the bus users (a service, the operator, the provisioner)."""
    if stack.bus is None:
        raise StackError("this stack uses a NATS server it did not start")
    return await connect_as(stack.nats_url, stack.bus, user)


def seed_file(stack: Stack, user: str = OPERATOR) -> Path:
    """The nkey seed file of bus user `user`, for tools run as separate processes."""
    if stack.bus is None:
        raise StackError("this stack uses a NATS server it did not start")
    return stack.bus.seed_file(user)


def start_replica(stack: Stack, name: str, *, wait: bool = True) -> ServiceProcess:
    """Another process of service `name` on a free port, sharing its database and NATS; the
    stack stops it with the rest. Where `name` shares a process with others
    (ONBEHALF_COLOCATE), the replica is another process of the whole group, each member on a
    port of its own: the group's in-process requests (orders asking cart) stay in it."""
    group = stack.group_of(name)
    number = len([k for k in stack.replicas if k.rsplit("-", 1)[0] == group[0]]) + 2
    key = f"{'+'.join(group)}-{number}"
    taken = {*stack.ports.values(), *(r.port for r in stack.replicas.values())}
    if len(group) == 1:
        started = {
            f"{name}-{number}": start_service(
                name,
                port=free_port(taken=taken),
                env=stack.service_env(name),
                log_dir=stack.workdir / "logs" / key,
            )
        }
    else:
        members: dict[str, tuple[int, Mapping[str, str]]] = {}
        for member in group:
            port = free_port(taken=taken)
            taken.add(port)
            members[member] = (port, stack.service_env(member))
        started = {
            f"{member}-{number}": service
            for member, service in start_colocated(
                members, log_dir=stack.workdir / "logs" / key
            ).items()
        }
    stack.replicas.update(started)
    if wait:
        for service in started.values():
            wait_healthy(service)
    return next(s for s in started.values() if s.name == name)


@contextlib.contextmanager
def stack_on_postgres(
    workdir: Path,
    *,
    services: Sequence[str],
    admin_email: str,
    admin_password: str,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """A stack whose `services` keep their data in a PostgreSQL of its own (the others on
    SQLite); both stopped when the block ends."""
    server = start_postgres(workdir)
    try:
        stack = start_stack(
            workdir / "stack",
            admin_email=admin_email,
            admin_password=admin_password,
            database_urls={name: server.create_database(name) for name in services},
            extra_env=dict(extra_env or {}),
        )
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        server.stop()
