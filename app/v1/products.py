"""Products and members' accounts in them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, ListQuery, Name, Output, Page, Text, absent, changes_of, sort_param
from tenants.clients import service as clients
from tenants.clients.models import ProductClient
from tenants.errors import NotFoundError
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission
from tenants.products import service
from tenants.products.models import Product, ProductAccount, ProductAccountStatus

router = ApiRouter("/v1/products", "products")
accounts = ApiRouter("/v1/product-accounts", "product accounts")

Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=63)]


class ProductOut(Output):
    id: uuid.UUID
    key: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class ProductPage(Page[ProductOut]):
    pass


class ProductCreate(Input):
    key: Key = Field(
        description="Short stable name: lower-case letter, then letters, digits, - or _.",
        # The service's own rule, declared (it refuses in words beside the field).
        json_schema_extra={"pattern": service.KEY.pattern},
    )
    name: Name
    description: Text = ""


class ProductPatch(Input):
    name: Name = Field(default_factory=absent)
    description: Text = Field(default_factory=absent)


#: What products can be listed by.
PRODUCT_SORTS = ("key", "name", "created_at")


class ProductQuery(ListQuery):
    sort: str = sort_param("key", PRODUCT_SORTS)


@router.get(
    "",
    summary="List products",
    permission=Permission.PRODUCTS_READ,
    query=ProductQuery,
    response=ProductPage,
    errors=(422,),
)
async def list_products(call: Call[Input, ProductQuery]) -> ProductPage:
    q = call.query
    page = await paginate(
        Product.all(),
        Sort.parse(q.sort, PRODUCT_SORTS),
        cursor=q.cursor,
        limit=q.limit,
    )
    return ProductPage(
        items=[ProductOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    summary="Create a product",
    permission=Permission.PRODUCTS_WRITE,
    body=ProductCreate,
    response=ProductOut,
    status=201,
    errors=(409, 422),
)
async def create_product(call: Call[ProductCreate, Input]) -> ProductOut:
    b = call.body
    return ProductOut.model_validate(
        await service.create_product(b.key, b.name, b.description, actor=call.actor)
    )


@router.get(
    "/{id}",
    summary="Get a product",
    permission=Permission.PRODUCTS_READ,
    response=ProductOut,
    errors=(404,),
)
async def get_product(call: Call[Input, Input]) -> ProductOut:
    return ProductOut.model_validate(await service.get_product(call.id()))


@router.patch(
    "/{id}",
    summary="Change a product",
    permission=Permission.PRODUCTS_WRITE,
    body=ProductPatch,
    response=ProductOut,
    errors=(404, 422),
)
async def update_product(call: Call[ProductPatch, Input]) -> ProductOut:
    return ProductOut.model_validate(
        await service.update_product(call.id(), changes_of(call.body), actor=call.actor)
    )


@router.delete(
    "/{id}",
    summary="Delete a product without live accounts",
    permission=Permission.PRODUCTS_WRITE,
    status=204,
    errors=(404, 409),
)
async def delete_product(call: Call[Input, Input]) -> None:
    await service.delete_product(call.id(), actor=call.actor)


class AccountOut(Output):
    id: uuid.UUID
    member_id: uuid.UUID
    product_id: uuid.UUID
    status: ProductAccountStatus
    created_at: datetime
    updated_at: datetime


class AccountPage(Page[AccountOut]):
    pass


class AccountCreate(Input):
    member_id: uuid.UUID
    product_id: uuid.UUID


class AccountPatch(Input):
    status: ProductAccountStatus


class AccountQuery(ListQuery):
    member_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    status: ProductAccountStatus | None = None


@accounts.get(
    "",
    summary="List product accounts",
    permission=Permission.PRODUCTS_READ,
    query=AccountQuery,
    response=AccountPage,
    errors=(422,),
)
async def list_product_accounts(call: Call[Input, AccountQuery]) -> AccountPage:
    q = call.query
    query = ProductAccount.all()
    for field in ("member_id", "product_id", "status"):
        value = getattr(q, field)
        if value is not None:
            query = query.filter(**{field: value})
    page = await paginate(query, Sort("created_at"), cursor=q.cursor, limit=q.limit)
    return AccountPage(
        items=[AccountOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor
    )


@accounts.post(
    "",
    summary="Give a member an account in a product (idempotent)",
    permission=Permission.PRODUCTS_WRITE,
    body=AccountCreate,
    response=AccountOut,
    status=201,
    errors=(404, 409, 422),
)
async def assign_product(call: Call[AccountCreate, Input]) -> AccountOut:
    account, _ = await service.assign_product(
        call.body.member_id, call.body.product_id, actor=call.actor
    )
    return AccountOut.model_validate(account)


@accounts.get(
    "/{id}",
    summary="Get a product account",
    permission=Permission.PRODUCTS_READ,
    response=AccountOut,
    errors=(404,),
)
async def get_product_account(call: Call[Input, Input]) -> AccountOut:
    return AccountOut.model_validate(await service.get_account(call.id()))


@accounts.patch(
    "/{id}",
    summary="Assign, suspend or remove a product account",
    permission=Permission.PRODUCTS_WRITE,
    body=AccountPatch,
    response=AccountOut,
    errors=(404, 422),
)
async def update_product_account(call: Call[AccountPatch, Input]) -> AccountOut:
    return AccountOut.model_validate(
        await service.set_account_status(call.id(), call.body.status, actor=call.actor)
    )


class ClientOut(Output):
    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    client_id: str
    scopes: list[str]
    revoked_at: datetime | None
    created_at: datetime


class ClientCreated(ClientOut):
    client_secret: str = Field(description="Shown once; store it in the product's secret store.")
    token_endpoint: str


class ClientPage(Page[ClientOut]):
    pass


#: The scopes a product's client may be given, as the document declares them.
GRANTABLE_SCOPES: dict[str, Any] = {
    "type": "string",
    "maxLength": 50,
    "enum": sorted(p.value for p in clients.GRANTABLE),
}


class ClientCreate(Input):
    name: Name
    scopes: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        min_length=1,
        max_length=20,
        # Declared, so a client generating requests sends scopes a product may hold; the
        # service names an unknown or ungrantable one (422) in its own words.
        json_schema_extra={"items": GRANTABLE_SCOPES},
    )


@router.get(
    "/{id}/clients",
    summary="List a product's API clients",
    permission=Permission.PRODUCTS_READ,
    query=ListQuery,
    response=ClientPage,
    errors=(404,),
)
async def list_product_clients(call: Call[Input, ListQuery]) -> ClientPage:
    product = await service.get_product(call.id())
    page = await paginate(
        ProductClient.filter(product_id=product.id),
        Sort("created_at"),
        cursor=call.query.cursor,
        limit=call.query.limit,
        within=product.id,
    )
    return ClientPage(
        items=[ClientOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{id}/clients",
    summary="Register an OAuth 2.0 client (client credentials) for a product",
    permission=Permission.PRODUCTS_WRITE,
    body=ClientCreate,
    response=ClientCreated,
    status=201,
    errors=(404, 422),
)
async def create_product_client(call: Call[ClientCreate, Input]) -> ClientCreated:
    client, secret = await clients.create_client(
        call.id(), call.body.name, call.body.scopes, actor=call.actor
    )
    base = call.request.app.state.settings.base_url
    return ClientCreated(
        **ClientOut.model_validate(client).model_dump(),
        client_secret=secret,
        token_endpoint=f"{base}/oauth/token",
    )


@router.delete(
    "/{id}/clients/{client_id}",
    summary="Revoke a product's client",
    permission=Permission.PRODUCTS_WRITE,
    status=204,
    errors=(404,),
)
async def revoke_product_client(call: Call[Input, Input]) -> None:
    client = await clients.get_client(call.id("client_id"))
    if client.product_id != call.id():
        raise NotFoundError("there is no such client for this product")
    await clients.revoke_client(client.id, actor=call.actor)
