"""The chain cannot be rewritten at its end: signed checkpoints outside audit's database catch it."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from devtools.stacks import seed_file
from libs.common.audit_chain import GENESIS, chain_hash, read_checkpoint
from libs.common.bus import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT
from libs.common.signing import load_public_keys, public_keys_path
from onbehalf.cli import app
from onbehalf.stack import Stack, start_stack
from tests.security.bus import bus_client
from tests.support import Api, ok, unique, wait_until

ADMIN_EMAIL = "admin@checkpoints.test"
COLUMNS = (
    "seq, id, type, time, source, actor_id, actor_org_id, subject_org_id, subject_user_id, "
    "acting_session_id, policy_revision, envelope, prev_hash, hash, emitter, recorded_at"
)


@dataclass
class Private:
    """A stack of this module's own (its audit database is tampered with), checkpointing every
    second, and its admin."""

    stack: Stack
    admin: Api

    @property
    def database(self) -> Path:
        return self.stack.workdir / "db" / "audit.db"

    @property
    def checkpoint_file(self) -> Path:
        return self.stack.workdir / "db" / "audit-checkpoints.jsonl"

    @property
    def public_keys(self) -> Path:
        return public_keys_path(self.stack.secrets_dir)

    def rows(self) -> list[sqlite3.Row]:
        with closing(sqlite3.connect(self.database)) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(f"SELECT {COLUMNS} FROM audit_records ORDER BY seq"))

    def head(self) -> tuple[int, str]:
        last = self.rows()[-1]
        return int(last["seq"]), str(last["hash"])

    def changes(self, count: int = 3) -> None:
        """`count` audited changes (organisations created), waited for in the chain."""
        before = len(self.rows())
        for _ in range(count):
            body = {"name": unique("Cp"), "contract_number": unique("C"), "country": "DE"}
            ok(self.admin.post("identity", "/v1/orgs", json=body), 201)
        wait_until(lambda: len(self.rows()) >= before + count, timeout=20.0, what="audited")

    def checkpoint(self) -> dict[str, Any]:
        body: dict[str, Any] = ok(self.admin.post("audit", "/v1/audit/checkpoints"), 201)
        # The request itself is audited: wait for it, so nothing arrives while we tamper.
        wait_until(lambda: self.head()[0] > body["seq"], timeout=20.0, what="request audited")
        return body

    def cli_verify(self, *extra: str) -> tuple[int, str]:
        args = ["audit", "verify", "--database-url", str(self.database)]
        args += ["--public-keys", str(self.public_keys), *extra]
        result = CliRunner().invoke(app, args)
        return result.exit_code, result.output

    def stream_args(self) -> tuple[str, ...]:
        return ("--nats-url", self.stack.nats_url, "--nats-creds", str(seed_file(self.stack)))

    @contextmanager
    def audit_stopped(self) -> Iterator[None]:
        """Audit down while its database is edited (nothing appends meanwhile)."""
        self.stack.services["audit"].stop()
        try:
            yield
        finally:
            self.stack.start_one("audit")


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    password = secrets.token_urlsafe(16)
    stack = start_stack(
        tmp_path_factory.mktemp("checkpoints"),
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        extra_env={"ONBEHALF_CHECKPOINT_INTERVAL_SECONDS": "1"},
    )
    try:
        with httpx.Client(timeout=15.0) as client:
            admin = Api(stack=stack, client=client).login(ADMIN_EMAIL, password)
            yield Private(stack=stack, admin=admin)
    finally:
        stack.stop()


def rechain(db: sqlite3.Connection, rows: list[dict[str, Any]], prev: str) -> None:
    """What someone with write access does: rewrite the rows from `rows[0]` on, each hash
    recomputed so that the chain itself stays consistent."""
    for row in rows:
        digest = chain_hash(prev, row["envelope"])
        db.execute(
            "UPDATE audit_records SET envelope = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (row["envelope"], f"tmp-{row['seq']}", digest, row["seq"]),
        )
        row["prev_hash"], row["hash"], prev = prev, digest, digest
    # prev_hash is unique: set the real values once no two rows can collide.
    for row in rows:
        db.execute(
            "UPDATE audit_records SET prev_hash = ? WHERE seq = ?", (row["prev_hash"], row["seq"])
        )


def restore(private: Private, original: list[sqlite3.Row]) -> None:
    with closing(sqlite3.connect(private.database)) as db, db:
        db.execute("DELETE FROM audit_records")
        db.executemany(
            f"INSERT INTO audit_records ({COLUMNS}) VALUES ({', '.join('?' * 16)})",
            [tuple(row) for row in original],
        )


def test_checkpoints_are_signed_and_published_outside_the_database(private: Private) -> None:
    private.changes()
    seq, _ = private.head()

    def periodic() -> dict[str, Any] | None:
        if not private.checkpoint_file.exists():
            return None
        lines = private.checkpoint_file.read_text().splitlines()
        last: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        return last if last.get("seq", 0) >= seq else None

    wait_until(periodic, timeout=20.0, what="a periodic checkpoint in the file")

    made = private.checkpoint()
    keys = load_public_keys(private.public_keys)
    assert read_checkpoint(made["document"], keys).seq == made["seq"]
    assert made["document"]["service"] == "audit"
    lines = private.checkpoint_file.read_text().splitlines()
    assert made["document"] in [json.loads(line) for line in lines]

    async def last_in_stream() -> dict[str, Any]:
        nc = await bus_client(private.stack, "operator")
        try:
            message = await nc.jetstream().get_last_msg(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT)
            assert message.data is not None
            document: dict[str, Any] = json.loads(message.data)
            return document
        finally:
            await nc.close()

    in_stream = asyncio.run(last_in_stream())
    assert read_checkpoint(in_stream, keys).seq >= made["seq"]

    verified = ok(private.admin.get("audit", "/v1/audit/verify"))
    assert verified["ok"] and verified["signatures_checked"], verified
    assert verified["checkpoint_seq"] is not None
    code, out = private.cli_verify("--checkpoints", str(private.checkpoint_file))
    assert code == 0 and "checkpoint" in out and "signatures: checked" in out, out

    # Nobody without the right asks for one (no token: 401, JSON).
    refused = httpx.post(private.stack.url("audit") + "/v1/audit/checkpoints", timeout=10.0)
    assert refused.status_code == 401 and refused.json()["detail"]


def test_consistent_rewrite_of_the_newest_records_is_caught(private: Private) -> None:
    private.changes()
    made = private.checkpoint()
    with private.audit_stopped():
        original = private.rows()
        # Remove one of the newest events and rechain the rest: every remaining record keeps
        # a valid signature, and the chain is consistent again.
        victim = dict(original[-3])
        later = [dict(r) for r in original[-2:]]
        with closing(sqlite3.connect(private.database)) as db, db:
            db.execute("DELETE FROM audit_records WHERE seq = ?", (victim["seq"],))
            rechain(db, later, prev=str(original[-4]["hash"]))

        code, out = private.cli_verify()
        assert code == 0, out  # without a checkpoint the rewrite is invisible
        for extra in (("--checkpoints", str(private.checkpoint_file)), private.stream_args()):
            code, out = private.cli_verify(*extra)
            assert code == 1, out
            assert "checkpoint" in out and "rewritten" in out, out
    try:
        verdict = ok(private.admin.get("audit", "/v1/audit/verify"))
        assert not verdict["ok"] and "checkpoint" in verdict["problem"], verdict
        assert verdict["first_broken"] >= made["seq"] - 1
        # Audit will not sign the rewritten head.
        refused = private.admin.post("audit", "/v1/audit/checkpoints")
        assert refused.status_code == 409 and "rewritten" in refused.json()["detail"]
    finally:
        with private.audit_stopped():
            restore(private, original)
    assert ok(private.admin.get("audit", "/v1/audit/verify"))["ok"]


def test_truncation_of_the_newest_records_is_caught(private: Private) -> None:
    private.changes()
    private.checkpoint()
    with private.audit_stopped():
        original = private.rows()
        with closing(sqlite3.connect(private.database)) as db, db:
            db.execute("DELETE FROM audit_records WHERE seq >= ?", (original[-3]["seq"],))

        code, out = private.cli_verify()
        assert code == 0, out  # a shorter chain is still a valid chain
        for extra in (("--checkpoints", str(private.checkpoint_file)), private.stream_args()):
            code, out = private.cli_verify(*extra)
            assert code == 1 and "newest records were removed" in out, out
    try:
        verdict = ok(private.admin.get("audit", "/v1/audit/verify"))
        assert not verdict["ok"] and "removed" in verdict["problem"], verdict
    finally:
        with private.audit_stopped():
            restore(private, original)
    assert ok(private.admin.get("audit", "/v1/audit/verify"))["ok"]


def test_altered_envelope_fails_verify_naming_it(private: Private) -> None:
    """Content changed and every later hash recomputed: the chain is consistent, the
    signature of the changed record is not."""
    private.changes()
    with private.audit_stopped():
        original = private.rows()
        target = dict(original[-3])
        envelope = json.loads(target["envelope"])
        envelope["data"]["name"] = "Renamed by the attacker"
        target["envelope"] = json.dumps(envelope, sort_keys=True, separators=(",", ":"))
        db_rows = [target, *[dict(r) for r in original[-2:]]]
        with closing(sqlite3.connect(private.database)) as db, db:
            rechain(db, db_rows, prev=str(original[-4]["hash"]))
        code, out = private.cli_verify()
        assert code == 1, out
        assert f"seq={target['seq']}" in out and target["id"] in out, out
        assert "signature does not match" in out, out
    try:
        verdict = ok(private.admin.get("audit", "/v1/audit/verify"))
        assert not verdict["ok"] and verdict["broken_id"] == target["id"], verdict
        assert "signature" in verdict["problem"]
    finally:
        with private.audit_stopped():
            restore(private, original)
    assert ok(private.admin.get("audit", "/v1/audit/verify"))["ok"]


def test_a_chain_from_genesis_verifies_with_signatures(private: Private) -> None:
    rows = private.rows()
    assert rows[0]["prev_hash"] == GENESIS
    assert {row["emitter"] for row in rows} <= {"identity", "catalog", "cart", "orders", "audit"}
    assert all(row["emitter"] for row in rows)
