"""A buyer's own budget: what is left, this period, of the one budget their orders count
against (budgets.budget_for), without the organisation's other budgets or members."""

from __future__ import annotations

from decimal import Decimal

from libs.common.clock import utcnow
from libs.common.principals import Principal, org_in_view
from libs.common.resources import Budgets
from libs.common.runtime import ServiceRuntime
from services.orders.budgets import budget_for, period_key, spent_in
from services.orders.schemas import OwnBudget, OwnBudgetRead


async def own_budget(*, runtime: ServiceRuntime, principal: Principal) -> OwnBudget:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read_own", Budgets(org_id=org_id))
    async with runtime.reading() as session:
        budget = await budget_for(session, org_id, principal)
        if budget is None:
            return OwnBudget(budget=None)
        key = period_key(budget.period, utcnow())
        spent = await spent_in(session, budget.id, key)
    return OwnBudget(
        budget=OwnBudgetRead(
            id=budget.id,
            kind=budget.kind,
            name=budget.name,
            amount=budget.amount,
            currency=budget.currency,
            period=budget.period,
            on_exceed=budget.on_exceed,
            period_key=key,
            spent=spent,
            # Approvals may spend beyond the amount: what is left is never below zero.
            remaining=max(budget.amount - spent, Decimal(0)),
        )
    )
