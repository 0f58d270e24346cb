"""Budgets: what a customer's employees (or staff acting for it) may spend per period.

A customer admin sets a budget per employee or per cost center (its members), in one
currency, per calendar month, quarter or year (UTC), refusing an order that exceeds it (409 with
what is left) or letting it wait for a customer admin's approval. Orders placed while acting
count against the one budget the admin marked `for_assisted_orders` (none marked: no limit).

Race safety: an order spends with one conditional UPDATE of its budget's period row inside the
order's own transaction (`spent = spent + total WHERE spent + total <= amount`). On SQLite the
transaction holds the only write lock (BEGIN IMMEDIATE); on PostgreSQL the second of two
concurrent UPDATEs waits for the first's row lock and re-evaluates its WHERE against the new
`spent`, so two orders can never both spend the last remainder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast
from uuid import uuid4

from sqlalchemy import CursorResult, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.db import insert_if_absent
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import ActingSession, Principal, org_in_view
from libs.common.resources import Budgets
from libs.common.runtime import ServiceRuntime, UnitOfWork
from services.orders import events
from services.orders.models import Budget, BudgetCharge, BudgetMember, BudgetPeriod, Order
from services.orders.schemas import BudgetPage, BudgetRead, BudgetWrite

if TYPE_CHECKING:
    from services.orders.schemas import OrderRead

AWAITING = "awaiting_approval"
# Amounts are whole cents; SQLite compares NUMERIC as floating point, where 0.1 + 0.2 > 0.3.
# Half a cent of slack makes the comparison exact for cent amounts on both databases.
_CENT_SLACK = Decimal("0.005")


class _Charged(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def total(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order being placed, as its budget sees it (the row is written beside the charge)."""

    id: str
    customer_org_id: str
    total: Decimal
    currency: str


# The budget lookups of every order placed, built once with bind parameters.
# Most organisations have no budget: orders asks whether there is any in the same snapshot
# read as its idempotency key, before placing (services/orders/service.py), before any ORM query.
ANY_BUDGET = (
    select(cast(Table, Budget.__table__).c.id)
    .where(cast(Table, Budget.__table__).c.org_id == bindparam("org_id"))
    .limit(1)
)
_ASSISTED_BUDGET = (
    select(Budget)
    .where(Budget.org_id == bindparam("org_id"), Budget.for_assisted_orders.is_(True))
    .order_by(Budget.created_at, Budget.id)
    .limit(1)
)
_OWN_BUDGET = (
    select(Budget)
    .where(
        Budget.org_id == bindparam("org_id"),
        Budget.kind == "employee",
        Budget.user_id == bindparam("user_id"),
    )
    .limit(1)
)
_COST_CENTER_BUDGET = (
    select(Budget)
    .join(BudgetMember, BudgetMember.budget_id == Budget.id)
    .where(
        Budget.org_id == bindparam("org_id"),
        Budget.kind == "cost_center",
        BudgetMember.user_id == bindparam("user_id"),
    )
    .order_by(Budget.created_at, Budget.id)
    .limit(1)
)
_INSERT_CHARGE = insert(cast(Table, BudgetCharge.__table__))


def period_key(period: str, when: datetime) -> str:
    """The calendar period `when` falls in: 2026-12, 2026-Q4 or 2026."""
    if period == "month":
        return f"{when.year:04d}-{when.month:02d}"
    if period == "quarter":
        return f"{when.year:04d}-Q{(when.month - 1) // 3 + 1}"
    return f"{when.year:04d}"


async def spent_in(session: AsyncSession, budget_id: str, key: str) -> Decimal:
    found = await session.scalar(
        select(BudgetPeriod.spent).where(
            BudgetPeriod.budget_id == budget_id, BudgetPeriod.period_key == key
        )
    )
    return Decimal(found or 0).quantize(Decimal("0.01"))


async def _ensure_period(session: AsyncSession, budget_id: str, key: str) -> None:
    """The period's row exists (two transactions creating it at once: one inserts)."""
    await insert_if_absent(
        session,
        BudgetPeriod,
        {"budget_id": budget_id, "period_key": key, "spent": Decimal(0)},
        key=["budget_id", "period_key"],
    )


async def spend(
    session: AsyncSession, budget: Budget, key: str, amount: Decimal, *, capped: bool
) -> bool:
    """Add `amount` to the period; when `capped`, only if it stays within the budget's amount
    (one conditional UPDATE: the race-safe step). True when it was added."""
    await _ensure_period(session, budget.id, key)
    statement = update(BudgetPeriod).where(
        BudgetPeriod.budget_id == budget.id, BudgetPeriod.period_key == key
    )
    if capped:
        ceiling = select(Budget.amount).where(Budget.id == budget.id).scalar_subquery()
        statement = statement.where(BudgetPeriod.spent + amount <= ceiling + _CENT_SLACK)
    result = await session.execute(
        statement.values(spent=BudgetPeriod.spent + amount).execution_options(
            synchronize_session=False
        )
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def budget_for(session: AsyncSession, org_id: str, principal: Principal) -> Budget | None:
    """The budget an order placed by `principal` counts against: the assisted-orders budget
    while acting; otherwise the buyer's own budget, else the first cost center they belong to."""
    if isinstance(principal, ActingSession):
        return await session.scalar(_ASSISTED_BUDGET, {"org_id": org_id})
    who = {"org_id": org_id, "user_id": principal.id}
    own = await session.scalar(_OWN_BUDGET, who)
    if own is not None:
        return own
    return await session.scalar(_COST_CENTER_BUDGET, who)


def _charged(
    budget: Budget, order: _Charged, key: str, state: str, spent: Decimal
) -> events.BudgetCharged:
    return events.BudgetCharged(
        budget_id=budget.id,
        order_id=order.id,
        period_key=key,
        amount=order.total,
        currency=order.currency,
        state=state,
        spent=spent,
        remaining=budget.amount - spent,
    )


async def charge(
    uow: UnitOfWork, *, order: NewOrder, principal: Principal, has_budget: bool
) -> str:
    """Count `order` against its budget in the order's transaction; the order's status
    (`placed` or `awaiting_approval`), or Conflict (409) when the budget refuses it.
    `has_budget`: whether the organisation had any budget when the request was read
    (ANY_BUDGET). Without one the transaction reads nothing here, so on PostgreSQL the
    order's rows and event go as one statement (libs/common/pg_combined.py). A budget
    created meanwhile is the race it always was: the read in the transaction took no lock."""
    if not has_budget:
        return "placed"
    session = uow.session
    budget = await budget_for(session, order.customer_org_id, principal)
    if budget is None:
        return "placed"
    key = period_key(budget.period, utcnow())
    fits = order.currency == budget.currency and await spend(
        session, budget, key, order.total, capped=True
    )
    spent = await spent_in(session, budget.id, key)
    if fits:
        await _record_charge(uow, budget, order, key, "spent", spent, principal)
        return "placed"
    remaining = max(budget.amount - spent, Decimal(0))
    if budget.on_exceed == "refuse":
        why = (
            f"the budget is in {budget.currency}, the order in {order.currency}"
            if order.currency != budget.currency
            else f"{remaining} {budget.currency} are left"
        )
        raise Conflict(
            f"this order of {order.total} {order.currency} exceeds the budget "
            f"'{budget.name}' for {key}: {why}",
            reason="budget_exceeded",
            budget_id=budget.id,
            period_key=key,
            remaining=str(remaining),
            currency=budget.currency,
        )
    await _record_charge(uow, budget, order, key, "awaiting", spent, principal)
    return AWAITING


async def _record_charge(
    uow: UnitOfWork,
    budget: Budget,
    order: NewOrder,
    key: str,
    state: str,
    spent: Decimal,
    principal: Principal,
) -> None:
    """The order's charge row in `state` (spent, awaiting) and its BudgetCharged event."""
    await uow.session.execute(
        _INSERT_CHARGE,
        {
            "order_id": order.id,
            "budget_id": budget.id,
            "period_key": key,
            "amount": order.total,
            "state": state,
        },
    )
    uow.publish(_charged(budget, order, key, state, spent), principal)


async def give_back(uow: UnitOfWork, *, order: Order, principal: Principal) -> None:
    """A cancelled order's amount goes back to the budget period it was spent in; one that
    was still awaiting approval spent nothing, and its charge is closed as withdrawn."""
    session = uow.session
    held = await session.get(BudgetCharge, order.id)
    if held is None or held.state not in ("spent", "awaiting"):
        return
    if held.state == "awaiting":
        held.state = "withdrawn"
        budget = await session.get(Budget, held.budget_id)
        if budget is not None:
            spent = await spent_in(session, budget.id, held.period_key)
            uow.publish(_charged(budget, order, held.period_key, "withdrawn", spent), principal)
        return
    held.state = "returned"
    await session.execute(
        update(BudgetPeriod)
        .where(BudgetPeriod.budget_id == held.budget_id, BudgetPeriod.period_key == held.period_key)
        .values(spent=BudgetPeriod.spent - held.amount)
        .execution_options(synchronize_session=False)
    )
    budget = await session.get(Budget, held.budget_id)
    if budget is not None:
        spent = await spent_in(session, budget.id, held.period_key)
        uow.publish(_charged(budget, order, held.period_key, "returned", spent), principal)


async def decide(
    *, runtime: ServiceRuntime, principal: Principal, order_id: str, approve: bool
) -> OrderRead:
    """A customer admin approves (the amount is spent, beyond the budget if need be) or
    rejects an order awaiting approval; decided once, by a conditional UPDATE."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "approve", Budgets(org_id=org_id))
    status = "placed" if approve else "rejected"
    async with runtime.unit_of_work() as uow:
        order = await uow.session.get(Order, order_id)
        if order is None or order.customer_org_id != org_id:
            raise NotFound(f"order {order_id} does not exist")
        result = await uow.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == AWAITING)
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise Conflict(
                f"order {order_id} is {order.status}: only an order awaiting approval is decided",
                status=order.status,
            )
        held = await uow.session.get(BudgetCharge, order_id)
        budget = await uow.session.get(Budget, held.budget_id) if held else None
        if held is not None and budget is not None:
            if approve:
                await spend(uow.session, budget, held.period_key, held.amount, capped=False)
            held.state = "spent" if approve else "rejected"
            spent = await spent_in(uow.session, budget.id, held.period_key)
            uow.publish(_charged(budget, order, held.period_key, held.state, spent), principal)
        uow.publish(
            events.OrderDecided(
                order_id=order_id,
                budget_id=held.budget_id if held else None,
                decision="approved" if approve else "rejected",
                status=status,
                total=order.total,
                currency=order.currency,
                placed_by=events.Party(id=order.placed_by_id, name=order.placed_by_name),
            ),
            principal,
        )
    from services.orders import service  # service imports this module

    return await service.get_order(runtime=runtime, principal=principal, order_id=order_id)


# ---------------------------------------------------------------- managing budgets


def _read(budget: Budget, members: list[str], spent: Decimal) -> BudgetRead:
    return BudgetRead(
        id=budget.id,
        org_id=budget.org_id,
        kind=budget.kind,
        user_id=budget.user_id,
        name=budget.name,
        member_ids=sorted(members),
        amount=budget.amount,
        currency=budget.currency,
        period=budget.period,
        on_exceed=budget.on_exceed,
        for_assisted_orders=budget.for_assisted_orders,
        period_key=period_key(budget.period, utcnow()),
        spent=spent,
        remaining=budget.amount - spent,
    )


async def _members(session: AsyncSession, budget_id: str) -> list[str]:
    found = await session.scalars(
        select(BudgetMember.user_id).where(BudgetMember.budget_id == budget_id)
    )
    return list(found)


async def list_budgets(*, runtime: ServiceRuntime, principal: Principal) -> BudgetPage:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "manage", Budgets(org_id=org_id))
    async with runtime.reading() as session:
        found = (
            await session.scalars(
                select(Budget).where(Budget.org_id == org_id).order_by(Budget.created_at, Budget.id)
            )
        ).all()
        items = [
            _read(
                budget,
                await _members(session, budget.id),
                await spent_in(session, budget.id, period_key(budget.period, utcnow())),
            )
            for budget in found
        ]
    return BudgetPage(items=items)


def _checked(body: BudgetWrite) -> tuple[str | None, str, list[str]]:
    """(user_id, name, members) of a valid body, or Invalid (422) saying what is wrong."""
    if body.kind == "employee":
        if not body.user_id or body.member_ids:
            raise Invalid("an employee's budget names its `user_id` and no `member_ids`")
        return body.user_id, body.name or f"employee {body.user_id}", []
    # A cost center without members is useful too: the budget of assisted orders alone.
    if body.user_id or not body.name:
        raise Invalid("a cost center's budget has a `name` (and `member_ids`), and no `user_id`")
    return None, body.name, sorted(set(body.member_ids))


async def save_budget(
    *, runtime: ServiceRuntime, principal: Principal, body: BudgetWrite, budget_id: str | None
) -> BudgetRead:
    """Create (`budget_id` None) or replace a budget of the caller's organisation."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "manage", Budgets(org_id=org_id))
    user_id, name, members = _checked(body)
    async with runtime.unit_of_work() as uow:
        session = uow.session
        if budget_id is None:
            budget = Budget(id=str(uuid4()), org_id=org_id, created_at=utcnow())
        else:
            found = await session.get(Budget, budget_id)
            if found is None or found.org_id != org_id:
                raise NotFound(f"budget {budget_id} does not exist")
            budget = found
        if user_id is not None:
            other = await session.scalar(
                select(Budget.id).where(
                    Budget.org_id == org_id, Budget.kind == "employee", Budget.user_id == user_id
                )
            )
            if other is not None and other != budget.id:
                raise Conflict(f"employee {user_id} already has budget {other}", budget_id=other)
        if body.for_assisted_orders:
            # One budget of the organisation holds assisted orders: choosing it unmarks any other.
            await session.execute(
                update(Budget)
                .where(Budget.org_id == org_id, Budget.id != budget.id)
                .values(for_assisted_orders=False)
                .execution_options(synchronize_session=False)
            )
        budget.kind, budget.user_id, budget.name = body.kind, user_id, name
        budget.amount, budget.currency, budget.period = body.amount, body.currency, body.period
        budget.on_exceed, budget.for_assisted_orders = body.on_exceed, body.for_assisted_orders
        session.add(budget)
        await session.execute(delete(BudgetMember).where(BudgetMember.budget_id == budget.id))
        await session.flush()
        session.add_all([BudgetMember(budget_id=budget.id, user_id=member) for member in members])
        await session.flush()
        uow.publish(
            events.BudgetSet(
                budget_id=budget.id,
                created=budget_id is None,
                kind=budget.kind,
                name=name,
                user_id=user_id,
                member_ids=members,
                amount=budget.amount,
                currency=budget.currency,
                period=budget.period,
                on_exceed=budget.on_exceed,
                for_assisted_orders=budget.for_assisted_orders,
            ),
            principal,
        )
        spent = await spent_in(session, budget.id, period_key(budget.period, utcnow()))
        return _read(budget, members, spent)


async def delete_budget(*, runtime: ServiceRuntime, principal: Principal, budget_id: str) -> None:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "manage", Budgets(org_id=org_id))
    async with runtime.unit_of_work() as uow:
        budget = await uow.session.get(Budget, budget_id)
        if budget is None or budget.org_id != org_id:
            raise NotFound(f"budget {budget_id} does not exist")
        await uow.session.execute(delete(BudgetMember).where(BudgetMember.budget_id == budget_id))
        await uow.session.execute(delete(BudgetPeriod).where(BudgetPeriod.budget_id == budget_id))
        await uow.session.delete(budget)
        uow.publish(events.BudgetDeleted(budget_id=budget_id, name=budget.name), principal)
