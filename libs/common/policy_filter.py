"""A database filter derived from the policy: which rows the policy could allow.

`Authorizer.conditions` asks Oso to partially evaluate `allow(principal, action, resource)`
with the resource left unknown (typed): the answer is the policy's own conditions on the
resource's attributes, one conjunction per way the policy allows, e.g.
`_this.status = "active" and "rep-1" in _this.caretaker_ids`. `sql_filter` turns them into a
SQLAlchemy WHERE clause over the columns and relations a service names. Nothing here knows a
rule: change the policy, and the filter changes with it. Anything it cannot translate raises
`Untranslatable`, and the caller falls back to asking the policy row by row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from polar.expression import Expression
from polar.variable import Variable
from sqlalchemy import and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

THIS = "_this"


class Untranslatable(Exception):
    """The policy's conditions use something the filter cannot express in SQL."""


def _is_this(term: Any) -> bool:
    return isinstance(term, Variable) and str.__eq__(term, THIS)


def _field(term: Any) -> str | None:
    """`f` when `term` is `_this.f`, else None."""
    if (
        isinstance(term, Expression)
        and term.operator == "Dot"
        and _is_this(term.args[0])
        and isinstance(term.args[1], str)
    ):
        return term.args[1]
    return None


def _constant(term: Any) -> Any:
    if isinstance(term, (Expression, Variable)):
        raise Untranslatable(f"not a constant: {term!r}")
    return term


def sql_filter(
    conditions: list[Any],
    *,
    resource: type,
    columns: Mapping[str, Any],
    relations: Mapping[str, Callable[[Any], ColumnElement[bool]]] | None = None,
) -> ColumnElement[bool]:
    """OR over the conjunctions of `conditions` (from `Authorizer.conditions`). `columns`
    maps an attribute of `resource` to its column; `relations` maps a list attribute to a
    function giving "value in that list" as SQL (e.g. an EXISTS on a link table)."""
    relations = relations or {}

    def term(expression: Any) -> ColumnElement[bool]:
        if expression is True:
            return true()
        if not isinstance(expression, Expression):
            raise Untranslatable(f"unexpected condition {expression!r}")
        op, args = expression.operator, expression.args
        if op == "And":
            return and_(true(), *(term(a) for a in args))
        if op == "Or":
            return or_(false(), *(term(a) for a in args))
        if op == "Isa":
            pattern = args[1]
            tag = getattr(pattern, "tag", None)
            if _is_this(args[0]) and tag == resource.__name__:
                if getattr(pattern, "fields", {}):
                    raise Untranslatable("a pattern with fields")
                return true()
            raise Untranslatable(f"isa {args!r}")
        if op in ("Unify", "Eq", "Neq"):
            left, right = args
            name = _field(left) or _field(right)
            value = _constant(right if _field(left) else left)
            if name is None or name not in columns:
                raise Untranslatable(f"comparison on {args!r}")
            column = columns[name]
            return column != value if op == "Neq" else column == value
        if op == "In":
            value, container = args
            name = _field(container)
            if name is None or name not in relations:
                raise Untranslatable(f"membership {args!r}")
            return relations[name](_constant(value))
        raise Untranslatable(f"operator {op}")

    if not conditions:
        return false()
    return or_(false(), *(term(c) for c in conditions))
