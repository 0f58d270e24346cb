"""The audit trail under faults: NATS down, audit killed, a service killed before its relay ran, tampering."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the venv
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from onbehalf.cli import app
from tests.faults.harness import FaultStack, Snapshot
from tests.support import Api, World, build_world, ok, unique, wait_until

# Enough that audit, killed once it has recorded a thousand of them, is surely mid-stream.
BACKLOG = 8000


def assert_clean(response: httpx.Response) -> None:
    """A request may be refused while NATS is down, but cleanly: a JSON body, never a 500."""
    assert response.status_code < 500 or response.status_code == 503, response.text
    if response.status_code >= 400:
        assert response.json()["detail"], response.text


def assert_exactly_once(
    faults: FaultStack, extra: set[str] | None = None, timeout: float = 60.0
) -> Snapshot:
    """Wait until nothing is pending and audit holds exactly the events written (plus `extra`);
    then check the stream holds each once too, and the chain verifies."""
    expected_extra = extra or set()
    last: list[Snapshot] = []

    def complete() -> Snapshot | None:
        snapshot = faults.snapshot()
        last[:] = [snapshot]
        expected = snapshot.written | expected_extra
        return snapshot if not snapshot.pending_ids and set(snapshot.audit) == expected else None

    try:
        snapshot = wait_until(complete, timeout=timeout, interval=0.1, what="audit complete")
    except AssertionError:
        seen = last[0]
        expected = seen.written | expected_extra
        missing, unexplained = expected - set(seen.audit), set(seen.audit) - expected
        raise AssertionError(
            f"pending={seen.pending} missing from audit={len(missing)} "
            f"unexplained in audit={len(unexplained)}"
        ) from None
    assert len(snapshot.audit) == len(set(snapshot.audit)), "an event recorded twice"
    stream = faults.stream_ids()
    doubled = {i for i in stream if stream.count(i) > 1} if len(stream) != len(set(stream)) else {}
    assert not doubled, f"published twice: {doubled}"
    assert set(stream) == snapshot.written | expected_extra
    report = faults.verify_database()
    assert report.ok and report.count == len(snapshot.audit), report
    return snapshot


def relay_failed_on(faults: FaultStack, services: list[str]) -> set[str]:
    """Wait until each service has pending events its relay has tried and failed to publish
    (NATS is away), and they are still pending; returns their ids."""

    def tried() -> set[str] | None:
        snapshot = faults.snapshot()
        ids = {i for s in services for i in snapshot.pending[s]}
        each = all(snapshot.pending[s] for s in services)
        return ids if each and all(snapshot.attempts[i] >= 1 for i in ids) else None

    return wait_until(tried, timeout=30.0, interval=0.1, what="relay rounds failed")


class Shop:
    """A sales rep acting for customer A, placing orders (against every orders process)."""

    def __init__(self, faults: FaultStack) -> None:
        self.faults = faults
        self.world: World = build_world(faults.admin)
        self.rep: Api = self.world.login(self.world.rep)
        self.acting, self.started = self.world.act_as(self.rep, self.world.org_a)
        stack = faults.stack
        self.orders_urls = [stack.url("orders")] + [
            replica.url for key, replica in stack.replicas.items() if key.startswith("orders-")
        ]
        self.placed = 0

    def try_order(self, key: str) -> list[httpx.Response]:
        """Add an item, then order from the cart on the next orders process in turn."""
        added = self.acting.post(
            "cart", "/v1/cart/items", json={"sku": self.world.skus[0], "quantity": 1}
        )
        url = self.orders_urls[self.placed % len(self.orders_urls)]
        order = self.faults.http.post(
            url + "/v1/orders", headers=self.acting.headers({"Idempotency-Key": key})
        )
        return [added, order]

    def order(self) -> dict[str, Any]:
        """One order that must succeed (retried while services reconnect after an outage)."""
        key = unique("order")

        def placed() -> dict[str, Any] | None:
            responses = self.try_order(key)
            for response in responses:
                assert_clean(response)
            return responses[1].json() if responses[1].status_code == 201 else None

        order = wait_until(placed, timeout=30.0, interval=0.2, what="an order placed")
        self.placed += 1
        # The cart service empties the cart from the placed event; wait for it, so that the
        # next order's item cannot be taken out by this order's checkout.
        wait_until(
            lambda: ok(self.acting.get("cart", "/v1/cart"))["items"] == [],
            timeout=30.0,
            what="cart emptied by the order",
        )
        return order


def test_nats_outage_while_ordering_loses_and_doubles_nothing(faults: FaultStack) -> None:
    shop = Shop(faults)
    admin, world = faults.admin, shop.world
    for _ in range(3):
        shop.order()
    # An item waits in the cart, so that the orders below get as far as asking for prices.
    ok(shop.acting.post("cart", "/v1/cart/items", json={"sku": world.skus[1], "quantity": 1}))

    faults.stack.nats.stop()  # type: ignore[union-attr]  # the fault stack started its NATS
    # Orders need catalog's prices over NATS: refused, cleanly, while it is away.
    for n in range(len(shop.orders_urls)):
        for response in shop.try_order(f"outage-{n}"):
            assert_clean(response)
    # Changes that need no NATS commit with their events, which wait in the outboxes.
    denied = shop.rep.post(
        "identity", "/v1/acting-as", json={"customer_org_id": world.org_b["id"], "mode": "full"}
    )
    assert denied.status_code == 403, denied.text
    second, _ = world.act_as(shop.rep, world.org_a)
    assert second.delete("identity", "/v1/acting-as/current").status_code == 204
    product = {"sku": unique("SKU"), "name": "Outage", "price": "1.00", "currency": "EUR"}
    ok(admin.post("catalog", "/v1/products", json=product), 201)
    pending = relay_failed_on(faults, ["identity", "catalog"])

    faults.stack.start_nats()
    for _ in range(3):
        shop.order()
    snapshot = assert_exactly_once(faults)
    assert pending <= set(snapshot.audit)

    verified = ok(admin.get("audit", "/v1/audit/verify"))
    assert verified["ok"] and verified["count"] == len(snapshot.audit)
    if faults.backend == "postgres":
        # Both orders processes ran a relay on the one outbox table, and both published.
        for url in shop.orders_urls:
            metrics = faults.http.get(url + "/metrics").text
            published = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("onbehalf_outbox_published_total ")
            )
            assert published > 0, url


def _exited(pid: int) -> bool:
    """The process has exited (its files, sockets included, are closed): gone or a zombie."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _drop_every_connection(faults: FaultStack) -> None:
    """What a PostgreSQL restart or failover does to its clients: every backend of the
    stack's databases is terminated (the services' pools, their kept write and read
    connections); returns once none of them is left."""
    names = [make_url(url).database for url in faults.database_urls.values()]
    for engine in faults.engines.values():  # the test's own readers reconnect afterwards
        faults.run(engine.dispose())
    faults.engines.clear()
    server = create_async_engine(
        make_url(faults.database_urls["audit"]).set(database="postgres"), poolclass=NullPool
    )

    async def terminate() -> list[int]:
        async with server.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = ANY(:names) AND pid <> pg_backend_pid()"
                ),
                {"names": names},
            )
            return [row[0] for row in rows]

    async def left(pids: list[int]) -> int:
        async with server.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
            return int((await connection.execute(query, {"pids": pids})).scalar_one())

    try:
        pids = faults.run(terminate())
        assert len(pids) >= len(names), pids  # every service held at least one
        wait_until(lambda: faults.run(left(pids)) == 0, timeout=30.0, what="backends gone")
        # A backend leaves pg_stat_activity before its process exits and the kernel closes its
        # socket; the clients' end of it must be closed too before the next request is sent.
        wait_until(lambda: all(map(_exited, pids)), timeout=30.0, what="backends exited")
    finally:
        faults.run(server.dispose())


@pytest.mark.postgres
def test_postgresql_dropping_every_connection_loses_no_request(
    postgres_faults: FaultStack,
) -> None:
    """After the server dropped every connection, the next requests succeed at the first
    try (no 500, no 503): each service replaces the connections it finds closed instead of
    handing them to a request; the orders placed are audited once, the chain intact."""
    faults = postgres_faults
    shop = Shop(faults)
    shop.order()  # every service has used (and kept) its connections
    _drop_every_connection(faults)
    for n in range(len(shop.orders_urls) * 2):
        added, order = shop.try_order(unique(f"after-drop-{n}"))
        assert added.status_code == 200, added.text
        assert order.status_code == 201, order.text
        shop.placed += 1
        wait_until(
            lambda: ok(shop.acting.get("cart", "/v1/cart"))["items"] == [],
            timeout=30.0,
            what="cart emptied by the order",
        )
    assert_exactly_once(faults)


def test_audit_killed_mid_stream_records_everything_once(faults: FaultStack) -> None:
    shop = Shop(faults)
    shop.order()
    assert_exactly_once(faults)

    # 1. Killed holding a delivered batch it could not commit yet: nothing was acknowledged,
    #    so JetStream delivers the batch again to the next audit process.
    with faults.audit_writes_held():
        shop.order()

        wait_until(
            lambda: faults.consumer_state("audit")[1] > 0,
            timeout=30.0,
            what="audit holding a delivered, unacknowledged batch",
        )
        faults.stack.services["audit"].kill()

    # 2. Killed while working through a backlog, with changes still being made.
    synthetic = faults.publish_synthetic(BACKLOG)
    shop.order()
    before = faults.audit_count()
    faults.stack.start_one("audit")
    wait_until(
        lambda: faults.audit_count() >= before + 1000,
        timeout=30.0,
        interval=0.005,
        what="audit consuming the backlog",
    )
    faults.stack.services["audit"].kill()  # SIGKILL: no shutdown, a batch in flight
    at_kill = faults.audit_count()
    assert at_kill < before + BACKLOG, "the backlog was done before the kill: raise BACKLOG"
    shop.order()  # while audit is dead

    faults.stack.start_one("audit")
    assert_exactly_once(faults, extra=set(synthetic))


def test_service_killed_before_its_relay_published(faults: FaultStack) -> None:
    admin = faults.admin
    faults.stack.nats.stop()  # type: ignore[union-attr]
    # Committed with its event while the relay cannot reach NATS: certainly not published.
    product = {"sku": unique("SKU"), "name": "Pending", "price": "2.00", "currency": "EUR"}
    ok(admin.post("catalog", "/v1/products", json=product), 201)
    pending = relay_failed_on(faults, ["catalog"])
    faults.stack.services["catalog"].kill()  # SIGKILL: its relay never gets to publish

    faults.stack.start_nats()
    if faults.backend == "postgres":
        # The other catalog process shares the outbox (row locks): it publishes the dead
        # one's events without waiting for it to come back.
        wait_until(
            lambda: pending <= set(faults.snapshot().audit),
            timeout=30.0,
            what="the surviving catalog relay published the pending events",
        )
    else:
        assert pending <= set(faults.snapshot().pending["catalog"])  # nobody else can
    faults.stack.start_one("catalog")
    snapshot = assert_exactly_once(faults)
    assert pending <= set(snapshot.audit)
    product_events = faults.audit_rows(
        "SELECT count(*) FROM audit_records WHERE type = 'com.onbehalf.catalog.product.created' "
        "AND envelope LIKE :sku",
        sku=f"%{product['sku']}%",
    )
    assert product_events[0][0] == 1


def published_unmarked(faults: FaultStack, before: set[str]) -> tuple[bool, set[str]]:
    """Wait until catalog's events written since `before` are in the audit log (published);
    (True, their ids) if they are still pending in its outbox, (False, ...) if marked."""

    def settled() -> tuple[bool, set[str]] | None:
        snapshot = faults.snapshot()
        new = set(snapshot.outbox["catalog"]) - before
        if not new:
            return None
        if not new & set(snapshot.pending["catalog"]):
            return False, new  # marked before the lock was taken
        return (True, new) if new <= set(snapshot.audit) else None

    return wait_until(settled, timeout=30.0, what="catalog's new events published")


# SQLite only: PostgreSQL's relays mark rows in the transaction that locked them (no window).
@pytest.mark.parametrize("faults", ["sqlite"], indirect=True)
def test_service_killed_after_publishing_before_marking_published(faults: FaultStack) -> None:
    """On SQLite the relay marks what JetStream acknowledged a moment later, together; killed
    in between, the restarted relay publishes those rows again: JetStream keeps one copy (the
    message id) and audit records one."""
    admin = faults.admin
    caught: set[str] = set()
    for _ in range(5):
        before = set(faults.snapshot().outbox["catalog"])
        product = {"sku": unique("SKU"), "name": "Unmarked", "price": "3.00", "currency": "EUR"}
        ok(admin.post("catalog", "/v1/products", json=product), 201)
        # Held from here, catalog's relay can publish (from memory) but not mark.
        with faults.sqlite_writes_held("catalog"):
            pending, ids = published_unmarked(faults, before)
            if pending:
                faults.stack.services["catalog"].kill()  # SIGKILL: the marks are never written
                caught = ids
                break
    assert caught, "the relay marked every row before the test could hold its database"
    assert caught <= set(faults.snapshot().pending["catalog"])

    faults.stack.start_one("catalog")  # its relay publishes the pending rows again
    snapshot = assert_exactly_once(faults)
    assert caught <= set(snapshot.audit)
    # The new process did publish them (a second time): JetStream de-duplicated them.
    metrics = faults.http.get(faults.stack.url("catalog") + "/metrics").text
    published = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("onbehalf_outbox_published_total ")
    )
    assert published >= len(caught)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", *args])
    return result.exit_code, result.output


def test_altered_record_is_found_and_named(faults: FaultStack) -> None:
    shop = Shop(faults)
    shop.order()
    assert_exactly_once(faults)
    admin = faults.admin
    audit_url = faults.database_urls["audit"]
    api_args = ("--url", faults.stack.url("audit"), "--token", admin.token or "")

    good = ok(admin.get("audit", "/v1/audit/verify"))
    assert good["ok"]
    code, out = _cli("verify", "--database-url", audit_url)
    assert code == 0 and good["head"] in out and f"count={good['count']}" in out, out

    seq, event_id, actor_id, envelope = faults.audit_rows(
        "SELECT seq, id, actor_id, envelope FROM audit_records "
        "WHERE type = 'com.onbehalf.orders.order.placed' ORDER BY seq LIMIT 1"
    )[0]

    # 1. A queryable column no longer says what the hashed envelope says.
    faults.execute(
        "audit",
        "UPDATE audit_records SET actor_id = :x WHERE id = :id",
        x=str(uuid4()),
        id=event_id,
    )
    broken = ok(admin.get("audit", "/v1/audit/verify"))
    assert not broken["ok"]
    assert (broken["first_broken"], broken["broken_id"]) == (seq, event_id)
    assert "actor_id" in broken["problem"]
    for args in (("--database-url", audit_url), api_args):
        code, out = _cli("verify", *args)
        assert code == 1, out
        assert f"seq={seq}" in out and event_id in out and "actor_id" in out, out
    faults.execute(
        "audit", "UPDATE audit_records SET actor_id = :x WHERE id = :id", x=actor_id, id=event_id
    )
    assert ok(admin.get("audit", "/v1/audit/verify"))["ok"]

    # 2. The hashed content itself: the order's total rewritten, hash left as it was.
    altered = json.loads(envelope)
    altered["data"]["total"] = "0.01"
    faults.execute(
        "audit",
        "UPDATE audit_records SET envelope = :e WHERE id = :id",
        e=json.dumps(altered, sort_keys=True, separators=(",", ":")),
        id=event_id,
    )
    code, out = _cli("verify", "--database-url", audit_url)
    assert code == 1 and f"seq={seq}" in out and "hash does not match" in out, out
    faults.execute(
        "audit", "UPDATE audit_records SET envelope = :e WHERE id = :id", e=envelope, id=event_id
    )

    # 3. Cutting off the end leaves a valid (shorter) chain: only an anchor kept elsewhere
    #    shows it. This is the limit docs/audit.md describes.
    head = ok(admin.get("audit", "/v1/audit/verify"))["head"]
    code, out = _cli("verify", "--database-url", audit_url, "--anchor", head)
    assert code == 0 and "anchor found" in out, out
    faults.execute(
        "audit", "DELETE FROM audit_records WHERE seq = (SELECT max(seq) FROM audit_records)"
    )
    code, out = _cli("verify", "--database-url", audit_url)
    assert code == 0, out
    code, out = _cli("verify", "--database-url", audit_url, "--anchor", head)
    assert code == 1 and "anchor is not in the chain" in out, out
    anchored = admin.get("audit", "/v1/audit/verify", params={"anchor": head}).json()
    assert anchored["ok"] is False
