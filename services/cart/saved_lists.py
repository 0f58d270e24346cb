"""Saved lists (order lists): shared by a customer's users and acting staff, and put into the cart whole."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import utcnow
from libs.common.errors import Conflict, Invalid, NotFound
from libs.common.principals import ActingSession, Principal, org_in_view
from libs.common.resources import Cart as CartResource
from libs.common.resources import SavedList as SavedListResource
from libs.common.runtime import ServiceRuntime, UnitOfWork
from libs.contracts.base import Event
from services.cart import events
from services.cart import service as carts
from services.cart.models import SavedList, SavedListItem
from services.cart.schemas import (
    CartRead,
    PartyRead,
    SavedListItemRead,
    SavedListItemWrite,
    SavedListPage,
    SavedListRead,
)
from services.cart.settings import CartSettings, cart_settings


def _read(saved: SavedList) -> SavedListRead:
    return SavedListRead(
        id=saved.id,
        org_id=saved.org_id,
        name=saved.name,
        items=[SavedListItemRead(sku=i.sku, name=i.name, quantity=i.quantity) for i in saved.items],
        created_by=PartyRead(id=saved.created_by_id, name=saved.created_by_name),
        created_at=saved.created_at,
        updated_at=saved.updated_at,
    )


def _items_data(saved: SavedList) -> list[events.ListLine]:
    return [events.ListLine(sku=i.sku, quantity=i.quantity) for i in saved.items]


def _author(principal: Principal) -> tuple[str, str]:
    """Who made a list: the staff member when acting, else the customer's own user."""
    if isinstance(principal, ActingSession):
        return principal.actor_id, principal.actor_name
    return principal.id, principal.name


async def _find(session: AsyncSession, org_id: str, list_id: str) -> SavedList:
    saved = await session.get(SavedList, list_id)
    # Another organisation's list is reported as missing, not as forbidden: no probing.
    if saved is None or saved.org_id != org_id:
        raise NotFound(f"saved list {list_id} does not exist")
    return saved


async def _name_taken(session: AsyncSession, org_id: str, name: str, *, other_than: str) -> bool:
    found = await session.scalar(
        select(SavedList.id).where(
            SavedList.org_id == org_id, SavedList.name == name, SavedList.id != other_than
        )
    )
    return found is not None


def _merged(items: list[SavedListItemWrite], settings: CartSettings) -> dict[str, int]:
    """One quantity per SKU, in the order first named; a SKU named twice adds up."""
    merged: dict[str, int] = {}
    for item in items:
        merged[item.sku] = merged.get(item.sku, 0) + item.quantity
    for sku, quantity in merged.items():
        carts.check_quantity(settings, quantity, sku=sku)
    return merged


async def _changed(
    uow: UnitOfWork, saved: SavedList, event: Event, principal: Principal
) -> SavedListRead:
    """The list is changed: its time moves on, the rows are written, the event is staged (the
    caller its actor); the answer is the list as the change leaves it."""
    saved.updated_at = utcnow()
    await uow.session.flush()
    uow.publish(event, principal)
    return _read(saved)


def _line_in(saved: SavedList, sku: str) -> SavedListItem:
    item = next((i for i in saved.items if i.sku == sku), None)
    if item is None:
        raise NotFound(f"SKU {sku} is not in the saved list")
    return item


# ---------------------------------------------------------------- reading


async def list_saved_lists(*, runtime: ServiceRuntime, principal: Principal) -> SavedListPage:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", SavedListResource(org_id=org_id))
    async with runtime.reading() as session:
        found = (
            await session.scalars(
                select(SavedList).where(SavedList.org_id == org_id).order_by(SavedList.name)
            )
        ).all()
    return SavedListPage(items=[_read(saved) for saved in found])


async def get_saved_list(
    *, runtime: ServiceRuntime, principal: Principal, list_id: str
) -> SavedListRead:
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", SavedListResource(org_id=org_id, id=list_id))
    async with runtime.reading() as session:
        return _read(await _find(session, org_id, list_id))


# ---------------------------------------------------------------- changing


async def create_saved_list(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    name: str,
    items: list[SavedListItemWrite],
) -> SavedListRead:
    settings = cart_settings(runtime)
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", SavedListResource(org_id=org_id))
    wanted = _merged(items, settings)
    if len(wanted) > settings.max_saved_list_items:
        raise Invalid(f"a saved list holds at most {settings.max_saved_list_items} products")
    quote = await carts.quote(runtime, org_id, list(wanted)) if wanted else None
    author_id, author_name = _author(principal)
    try:
        async with runtime.unit_of_work() as uow:
            count = await uow.session.scalar(
                select(func.count()).select_from(SavedList).where(SavedList.org_id == org_id)
            )
            if (count or 0) >= settings.max_saved_lists:
                raise Conflict(f"this customer already has {settings.max_saved_lists} saved lists")
            if await _name_taken(uow.session, org_id, name, other_than=""):
                raise Conflict(f"a saved list named {name!r} already exists")
            now = utcnow()
            saved = SavedList(
                id=str(uuid4()),
                org_id=org_id,
                name=name,
                created_by_id=author_id,
                created_by_name=author_name,
                created_at=now,
                updated_at=now,
                items=[
                    SavedListItem(
                        sku=sku,
                        name=quote.lines[sku].name if quote else sku,
                        quantity=quantity,
                        position=position,
                    )
                    for position, (sku, quantity) in enumerate(wanted.items())
                ],
            )
            uow.session.add(saved)
            await uow.session.flush()
            uow.publish(
                events.SavedListCreated(list_id=saved.id, name=name, items=_items_data(saved)),
                principal,
            )
            return _read(saved)
    except IntegrityError as exc:
        # The same name won a race a moment ago.
        raise Conflict(f"a saved list named {name!r} already exists") from exc


def _may_change(runtime: ServiceRuntime, principal: Principal, list_id: str) -> str:
    """The organisation whose list `principal` may change; 403 with the policy's reason."""
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "change", SavedListResource(org_id=org_id, id=list_id))
    return org_id


def _may_set_quantity(
    runtime: ServiceRuntime, principal: Principal, list_id: str, quantity: int
) -> tuple[CartSettings, str]:
    """What adding or changing a line opens with: the policy (403), the quantity's maximum (422)."""
    settings = cart_settings(runtime)
    org_id = _may_change(runtime, principal, list_id)
    carts.check_quantity(settings, quantity)
    return settings, org_id


async def rename_saved_list(
    *, runtime: ServiceRuntime, principal: Principal, list_id: str, name: str
) -> SavedListRead:
    org_id = _may_change(runtime, principal, list_id)
    try:
        async with runtime.unit_of_work() as uow:
            saved = await _find(uow.session, org_id, list_id)
            if saved.name == name:
                return _read(saved)
            if await _name_taken(uow.session, saved.org_id, name, other_than=saved.id):
                raise Conflict(f"a saved list named {name!r} already exists")
            previous, saved.name = saved.name, name
            return await _changed(
                uow,
                saved,
                events.SavedListRenamed(list_id=saved.id, previous_name=previous, name=name),
                principal,
            )
    except IntegrityError as exc:
        raise Conflict(f"a saved list named {name!r} already exists") from exc


async def delete_saved_list(*, runtime: ServiceRuntime, principal: Principal, list_id: str) -> None:
    org_id = _may_change(runtime, principal, list_id)
    async with runtime.unit_of_work() as uow:
        saved = await _find(uow.session, org_id, list_id)
        deleted = events.SavedListDeleted(
            list_id=saved.id, name=saved.name, items=_items_data(saved)
        )
        await uow.session.delete(saved)
        uow.publish(deleted, principal)


async def add_list_item(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: str,
    sku: str,
    quantity: int,
) -> SavedListRead:
    settings, org_id = _may_set_quantity(runtime, principal, list_id, quantity)
    line = (await carts.quote(runtime, org_id, [sku])).lines[sku]
    async with runtime.unit_of_work() as uow:
        saved = await _find(uow.session, org_id, list_id)
        item = next((i for i in saved.items if i.sku == sku), None)
        if item is None:
            if len(saved.items) >= settings.max_saved_list_items:
                raise Invalid(
                    f"a saved list holds at most {settings.max_saved_list_items} products"
                )
            item = SavedListItem(
                sku=sku,
                name=line.name,
                quantity=quantity,
                position=max((i.position for i in saved.items), default=-1) + 1,
            )
            saved.items.append(item)
        else:
            carts.check_quantity(settings, item.quantity + quantity, sku=sku)
            item.quantity += quantity
            item.name = line.name
        return await _changed(
            uow,
            saved,
            events.SavedListItemAdded(
                list_id=saved.id, sku=sku, added=quantity, quantity=item.quantity
            ),
            principal,
        )


async def change_list_item(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: str,
    sku: str,
    quantity: int,
) -> SavedListRead:
    _, org_id = _may_set_quantity(runtime, principal, list_id, quantity)
    async with runtime.unit_of_work() as uow:
        saved = await _find(uow.session, org_id, list_id)
        item = _line_in(saved, sku)
        previous, item.quantity = item.quantity, quantity
        return await _changed(
            uow,
            saved,
            events.SavedListItemChanged(
                list_id=saved.id, sku=sku, previous_quantity=previous, quantity=quantity
            ),
            principal,
        )


async def remove_list_item(
    *, runtime: ServiceRuntime, principal: Principal, list_id: str, sku: str
) -> SavedListRead:
    org_id = _may_change(runtime, principal, list_id)
    async with runtime.unit_of_work() as uow:
        saved = await _find(uow.session, org_id, list_id)
        item = _line_in(saved, sku)
        saved.items.remove(item)
        return await _changed(
            uow,
            saved,
            events.SavedListItemRemoved(list_id=saved.id, sku=sku, quantity=item.quantity),
            principal,
        )


async def add_list_to_cart(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    list_id: str,
    if_match: str | None = None,
) -> CartRead:
    """Every line of the list into the cart at today's catalog prices, or nothing at all."""
    settings = cart_settings(runtime)
    org_id = org_in_view(principal)
    runtime.authorizer.authorize(principal, "read", SavedListResource(org_id=org_id, id=list_id))
    runtime.authorizer.authorize(principal, "change", CartResource(org_id=org_id))
    async with runtime.reading() as session:
        lines = {i.sku: i.quantity for i in (await _find(session, org_id, list_id)).items}
    if not lines:
        raise Invalid("the saved list is empty")
    quote = await carts.quote(runtime, org_id, list(lines))
    async with carts.changing_cart(
        runtime, settings=settings, principal=principal, org_id=org_id, if_match=if_match
    ) as change:
        # The list as it is now, inside the cart's transaction: it may have changed meanwhile.
        saved = await _find(change.uow.session, org_id, list_id)
        if {i.sku for i in saved.items} - set(quote.lines):
            raise Conflict("the saved list changed at the same moment; try again")
        added: list[events.PricedListLine] = []
        for entry in saved.items:
            carts.add_line(change.cart, quote.lines[entry.sku], entry.quantity, settings)
            line = quote.lines[entry.sku]
            added.append(
                events.PricedListLine(
                    sku=entry.sku, quantity=entry.quantity, unit_price=line.unit_price
                )
            )
        if not added:
            raise Invalid("the saved list is empty")
        cart = await change.advance()
        return await change.publish(
            events.SavedListAddedToCart(
                list_id=saved.id,
                name=saved.name,
                cart_id=cart.id,
                cart_version=cart.version,
                items=added,
            )
        )
