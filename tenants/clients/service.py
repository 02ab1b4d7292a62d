"""Products' OAuth 2.0 clients: registered per organisation, authenticated with a secret
(client credentials grant, RFC 6749 §4.4), scoped.

A client id reads ``pc_<organisation id>_<random>`` so the token endpoint can open the
organisation's transaction before looking the client up, as API tokens do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tenants import db, notifications
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.clients.models import ProductClient
from tenants.errors import AuthenticationError, FieldProblem, InvalidInputError
from tenants.ids import OrgId
from tenants.models_base import get_by_id, max_length_of
from tenants.permissions import PRODUCT_SCOPES, Permission, parse_scopes
from tenants.products.models import Product

PREFIX = "pc"
#: What a product may be granted: its own scopes plus reading members and structure.
GRANTABLE = PRODUCT_SCOPES | {
    Permission.MEMBERS_READ,
    Permission.UNITS_READ,
    Permission.GROUPS_READ,
    Permission.PRODUCTS_READ,
    Permission.ORGANISATION_READ,
}


def org_of_client_id(client_id: str) -> OrgId | None:
    parts = client_id.split("_")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        return OrgId(uuid.UUID(hex=parts[1]))
    except ValueError:
        return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_client(
    product_id: uuid.UUID, name: str, scopes: list[str], *, actor: Actor
) -> tuple[ProductClient, str]:
    """Register a client for a product; returns it and its secret (shown once)."""
    grantable = {p.value for p in GRANTABLE}
    refused = [(i, s) for i, s in enumerate(scopes) if s not in grantable]
    if refused:
        # Each named by its place in the list: an unknown scope and one no product may
        # hold are told apart, with what a product may hold.
        known = {p.value for p in Permission}
        raise InvalidInputError(
            f"a product's client may hold only {', '.join(sorted(grantable))}",
            fields=[
                FieldProblem(
                    f"scopes[{i}]",
                    "expected a scope a product may hold: this one is not grantable to products"
                    if scope in known
                    else "expected a known scope",
                )
                for i, scope in refused
            ],
        )
    permissions = parse_scopes(scopes)
    product = await get_by_id(Product, product_id, "product")
    client_id = f"{PREFIX}_{db.current_org().hex}_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    client = await ProductClient.create(
        tenant_id=db.current_org(),
        product_id=product.id,
        name=name,
        client_id=client_id,
        secret_hash=_digest(secret),
        scopes=sorted(p.value for p in permissions),
    )
    await audit.record(
        "product_client.created",
        "product_client",
        client.id,
        actor=actor,
        after={"client_id": client_id, "product_id": product.id, "scopes": client.scopes},
    )
    return client, secret


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client: ProductClient
    product: Product
    scopes: frozenset[Permission]


async def authenticate_client(client_id: str, secret: str) -> AuthenticatedClient:
    """The client for these credentials, in the current organisation; AuthenticationError
    (one message for every cause) otherwise."""
    refused = AuthenticationError("the client credentials are not valid")
    # An id longer than the column can name no client (and the ORM refuses to compare it).
    fits = len(client_id) <= max_length_of(ProductClient, "client_id")
    client = await ProductClient.filter(client_id=client_id).first() if fits else None
    if client is None or client.revoked_at is not None:
        hmac.compare_digest(_digest(secret), _digest("x"))
        raise refused
    if not hmac.compare_digest(client.secret_hash, _digest(secret)):
        raise refused
    product = await Product.get(id=client.product_id)
    return AuthenticatedClient(client, product, parse_scopes(client.scopes))


async def get_client(client_pk: uuid.UUID) -> ProductClient:
    return await get_by_id(ProductClient, client_pk, "product client")


async def revoke_client(client_pk: uuid.UUID, *, actor: Actor) -> ProductClient:
    client = await get_by_id(ProductClient, client_pk, "product client", for_update=True)
    if client.revoked_at is not None:
        return client
    client.revoked_at = datetime.now(UTC)
    await client.save(update_fields=["revoked_at", "updated_at"])
    await notifications.credentials_revoked()
    await audit.record(
        "product_client.revoked",
        "product_client",
        client.id,
        actor=actor,
        after={"client_id": client.client_id},
    )
    return client
