"""Writes and reads of products and product accounts, in the caller's tenant transaction."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, InvalidInputError
from tenants.members.lifecycle import check_changeable
from tenants.members.service import get_member
from tenants.models_base import get_by_id, get_referenced
from tenants.products.models import Product, ProductAccount, ProductAccountStatus

KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def snapshot(product: Product) -> dict[str, Any]:
    return {"key": product.key, "name": product.name, "description": product.description}


def account_snapshot(account: ProductAccount) -> dict[str, Any]:
    return {
        "member_id": account.member_id,
        "product_id": account.product_id,
        "status": account.status,
    }


async def get_product(product_id: uuid.UUID, *, for_update: bool = False) -> Product:
    return await get_by_id(Product, product_id, "product", for_update=for_update)


async def create_product(key: str, name: str, description: str, *, actor: Actor) -> Product:
    if not KEY.match(key):
        raise InvalidInputError(
            f"{key!r} is not a valid product key",
            fields=[FieldProblem("key", "lower-case letter first, then letters, digits, - or _")],
        )
    if await Product.filter(key=key).exists():
        raise ConflictError(
            f"a product with key {key!r} exists", fields=[FieldProblem("key", "is already taken")]
        )
    product = await Product.create(
        tenant_id=db.current_org(), key=key, name=name, description=description
    )
    await audit.record(
        "product.created", "product", product.id, actor=actor, after=snapshot(product)
    )
    return product


async def update_product(
    product_id: uuid.UUID, changes: dict[str, Any], *, actor: Actor
) -> Product:
    product = await get_product(product_id, for_update=True)
    before = snapshot(product)
    for field, value in changes.items():
        setattr(product, field, value)
    old, new = audit.changed_fields(before, snapshot(product))
    if not new:
        return product
    await product.save(update_fields=[*new.keys(), "updated_at"])
    await audit.record("product.updated", "product", product.id, actor=actor, before=old, after=new)
    return product


async def delete_product(product_id: uuid.UUID, *, actor: Actor) -> None:
    """Delete a product nobody has an account in any more (removed accounts are kept)."""
    product = await get_product(product_id, for_update=True)
    live = (
        await ProductAccount.filter(product_id=product.id)
        .exclude(status=ProductAccountStatus.REMOVED)
        .count()
    )
    if live:
        raise ConflictError(
            f"{live} members still have an account in this product; remove the accounts first",
            extra={"accounts": live},
        )
    before = snapshot(product)
    await ProductAccount.filter(product_id=product.id).delete()
    await product.delete()
    await audit.record("product.deleted", "product", product.id, actor=actor, before=before)


async def get_account(account_id: uuid.UUID, *, for_update: bool = False) -> ProductAccount:
    return await get_by_id(ProductAccount, account_id, "product account", for_update=for_update)


async def assign_product(
    member_id: uuid.UUID, product_id: uuid.UUID, *, actor: Actor
) -> tuple[ProductAccount, bool]:
    """Give a member an account in a product; (account, created). A removed account is
    assigned again rather than duplicated."""
    member = await get_member(member_id)
    check_changeable(member.status)
    product = await get_referenced(Product, product_id, "product", field="product_id")
    existing = (
        await ProductAccount.filter(member_id=member.id, product_id=product.id)
        .select_for_update()
        .first()
    )
    if existing is not None:
        if existing.status == ProductAccountStatus.ASSIGNED:
            return existing, False
        return await set_account_status(
            existing.id, ProductAccountStatus.ASSIGNED, actor=actor
        ), False
    account = await ProductAccount.create(
        tenant_id=db.current_org(),
        member_id=member.id,
        product_id=product.id,
        status=ProductAccountStatus.ASSIGNED,
    )
    await audit.record(
        "product_account.assigned",
        "product_account",
        account.id,
        actor=actor,
        after=account_snapshot(account),
    )
    return account, True


async def set_account_status(
    account_id: uuid.UUID, status: ProductAccountStatus, *, actor: Actor
) -> ProductAccount:
    account = await get_account(account_id, for_update=True)
    if account.status == status:
        return account
    before = account.status
    account.status = status
    await account.save(update_fields=["status", "updated_at"])
    await audit.record(
        f"product_account.{status.value}",
        "product_account",
        account.id,
        actor=actor,
        before={"status": before},
        after={"status": status},
    )
    return account
