"""Benchmark: a sales rep's customer list (`GET /v1/customers?q=`) among 100,000 organisations.

Loads 100,000 customer organisations, 2,000 staff members and a rep who is caretaker of 10 of
them straight into identity's database (SQLAlchemy Core on identity's own tables, not 100,000
HTTP calls), then times the rep's list and searches, and the CPU identity spends per request.
The list comes from the policy: a filter derived from it narrows the rows, and the policy
still decides each one (libs/common/policy_filter.py)."""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu import CpuMeter
from devtools.harness import Api, ok, unique
from onbehalf.stack import start_stack
from services.identity.models import Caretaker, Organization, User


def _load(db_path: Path, *, orgs: int, staff: int, rep_id: str, cared: int) -> list[str]:
    """Insert the organisations and staff; returns the names of the rep's organisations."""
    engine = create_engine(f"sqlite:///{db_path}")
    now = datetime.now(UTC)
    org_rows: list[dict[str, object]] = [
        {
            "id": str(uuid.uuid4()),
            "name": f"Customer {index:06d} GmbH",
            "contract_number": f"K-{index:06d}",
            "country": ("DE", "AT", "CH", "FR")[index % 4],
            "status": "obsolete" if index % 97 == 0 else "active",
            "allow_assistance": index % 89 != 0,
            "is_seller": False,
            "generation": 0,
            "created_at": now,
        }
        for index in range(orgs)
    ]
    seller = None
    with engine.begin() as connection:
        seller = connection.execute(
            Organization.__table__.select().where(Organization.is_seller.is_(True))
        ).first()
        assert seller is not None, "identity has not bootstrapped its seller organisation"
        connection.execute(insert(Organization), org_rows)
        staff_rows = [
            {
                "id": str(uuid.uuid4()),
                "email": f"staff{index}@bench.test",
                "name": f"Staff {index}",
                "password_hash": "!",
                "kind": "staff",
                "org_id": seller.id,
                "roles": ["sales_rep"],
                "permissions": ["place_orders_as_customer"],
                "active": True,
                "generation": 0,
                "created_at": now,
            }
            for index in range(staff)
        ]
        connection.execute(insert(User), staff_rows)
        # Every other staff member cares for a few organisations; the rep for `cared`.
        links = [
            {"org_id": org_rows[(i * 7919) % orgs]["id"], "user_id": row["id"], "created_at": now}
            for i, row in enumerate(staff_rows)
        ]
        step = orgs // cared
        mine = [org_rows[i * step + 1] for i in range(cared)]
        links += [{"org_id": org["id"], "user_id": rep_id, "created_at": now} for org in mine]
        connection.execute(insert(Caretaker), links)
    engine.dispose()
    return [str(org["name"]) for org in mine]


def _time(api: Api, params: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ok(api.get("identity", "/v1/customers", params=params))
        times.append(time.perf_counter() - started)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=2_000)
    parser.add_argument("--cared", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200, help="requests per query")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="onbehalf-bench-search-"))
    password = secrets.token_urlsafe(12)
    stack = start_stack(workdir, admin_email="admin@bench.test", admin_password=password)
    try:
        with httpx.Client(timeout=60.0) as client:
            admin = Api(stack=stack, client=client).login("admin@bench.test", password)
            email = unique("rep") + "@bench.test"
            rep_user = ok(
                admin.post(
                    "identity",
                    "/v1/users",
                    json={
                        "email": email,
                        "name": "Bench Rep",
                        "password": "bench-password-1",
                        "kind": "staff",
                        "roles": ["sales_rep"],
                        "permissions": ["place_orders_as_customer"],
                    },
                ),
                201,
            )
            started = time.perf_counter()
            mine = _load(
                workdir / "db" / "identity.db",
                orgs=args.orgs,
                staff=args.staff,
                rep_id=rep_user["id"],
                cared=args.cared,
            )
            loaded = time.perf_counter() - started
            rep = admin.login(email, "bench-password-1")
            listed = ok(rep.get("identity", "/v1/customers", params={"limit": 20}))["items"]
            assert sorted(item["name"] for item in listed) == sorted(mine), listed
            queries = {
                "q= (all 10)": {"limit": "20"},
                "q=<one name>": {"q": mine[3], "limit": "20"},
                "q=Customer (matches all)": {"q": "Customer", "limit": "20"},
                "q=DE (country)": {"q": "DE", "limit": "20"},
            }
            meter = CpuMeter.of_stack(stack)
            print(
                f"onbehalf customer search — {args.orgs:,} organisations, {args.staff:,} staff, "
                f"a rep caretaker of {args.cared} (loaded in {loaded:.1f} s)"
            )
            for label, params in queries.items():
                meter.snapshot()
                times = _time(rep, params, args.runs)
                cpu = meter.delta()
                p50 = statistics.median(times) * 1000
                p99 = times[max(0, int(len(times) * 0.99) - 1)] * 1000
                print(
                    f"  {label:<26} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
                    f"identity CPU {cpu['identity'] * 1000 / args.runs:6.2f} ms/request"
                )
            admin_times = _time(admin, {"limit": "20"}, args.runs // 4)
            print(
                f"  {'platform admin, q=':<26} p50 {statistics.median(admin_times) * 1000:7.1f} ms"
                f"  p99 {admin_times[max(0, int(len(admin_times) * 0.99) - 1)] * 1000:7.1f} ms"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
