"""Budgets' HTTP routes (a customer admin's, never an acting session's) and the approval of
orders waiting because they exceed one: thin; decisions live in budgets.py and the policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from libs.common.web import CurrentPrincipal, Runtime, problems
from services.orders import budgets, own_budget
from services.orders.schemas import BudgetPage, BudgetRead, BudgetWrite, OrderRead, OwnBudget

BudgetId = Annotated[str, Path(max_length=64)]
OrderId = Annotated[str, Path(max_length=64)]

router = APIRouter(tags=["budgets"])


@router.get("/v1/budgets")
async def list_budgets(principal: CurrentPrincipal, runtime: Runtime) -> BudgetPage:
    return await budgets.list_budgets(runtime=runtime, principal=principal)


@router.get("/v1/budgets/mine")
async def my_budget(principal: CurrentPrincipal, runtime: Runtime) -> OwnBudget:
    """The budget the caller's own orders count against (null: none limits them), with what
    is left this period; a customer's buyers and admins, never an acting session."""
    return await own_budget.own_budget(runtime=runtime, principal=principal)


@router.post("/v1/budgets", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_budget(
    body: BudgetWrite, principal: CurrentPrincipal, runtime: Runtime
) -> BudgetRead:
    return await budgets.save_budget(
        runtime=runtime, principal=principal, body=body, budget_id=None
    )


@router.put("/v1/budgets/{budget_id}", responses=problems(409))
async def replace_budget(
    budget_id: BudgetId, body: BudgetWrite, principal: CurrentPrincipal, runtime: Runtime
) -> BudgetRead:
    return await budgets.save_budget(
        runtime=runtime, principal=principal, body=body, budget_id=budget_id
    )


@router.delete("/v1/budgets/{budget_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_budget(
    budget_id: BudgetId, principal: CurrentPrincipal, runtime: Runtime
) -> Response:
    await budgets.delete_budget(runtime=runtime, principal=principal, budget_id=budget_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/orders/{order_id}/approve", responses=problems(409))
async def approve_order(
    order_id: OrderId, principal: CurrentPrincipal, runtime: Runtime
) -> OrderRead:
    return await budgets.decide(
        runtime=runtime, principal=principal, order_id=order_id, approve=True
    )


@router.post("/v1/orders/{order_id}/reject", responses=problems(409))
async def reject_order(
    order_id: OrderId, principal: CurrentPrincipal, runtime: Runtime
) -> OrderRead:
    return await budgets.decide(
        runtime=runtime, principal=principal, order_id=order_id, approve=False
    )
