"""The organisation's identity backend: ``local`` (nothing mirrored) or a Keycloak realm
that organisations, members, groups and sessions are mirrored into. The client secret is
write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import NAME, Input, Output, StoredUrl
from tenants.identity import service
from tenants.identity.models import BackendKind, IdentityBackendConfig
from tenants.models_base import max_length_of
from tenants.permissions import Permission

router = ApiRouter("/v1/identity-backend", "identity")

Realm = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,255}$")]
ClientId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NAME
]


class IdentityBackendOut(Output):
    kind: BackendKind
    server_url: str | None
    realm: str | None
    client_id: str | None
    has_client_secret: bool = Field(description="Whether a secret is stored; it is never returned.")
    last_synced_at: datetime | None = Field(description="The last successful call to the backend.")
    last_error: str | None = Field(description="Why the last call failed (cleared by a success).")


class IdentityBackendIn(Input):
    kind: BackendKind
    server_url: (
        Annotated[AnyHttpUrl, StoredUrl(max_length_of(IdentityBackendConfig, "server_url"))] | None
    ) = Field(None, description="Keycloak's base URL, e.g. https://kc.example (no /admin).")
    realm: Realm | None = None
    client_id: ClientId | None = Field(
        None, description="A confidential client with a service account (client credentials)."
    )
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        None, description="Omit to keep the stored secret."
    )


class ReconcileOut(Output):
    queued: bool = Field(description="False when the backend is local (nothing to reconcile).")


async def _view() -> IdentityBackendOut:
    return IdentityBackendOut(**service.config_view(await service.get_config()))


@router.get(
    "",
    summary="Get the identity backend (local when none is configured)",
    permission=Permission.SSO_READ,
    response=IdentityBackendOut,
)
async def get_identity_backend(call: Call[Input, Input]) -> IdentityBackendOut:
    return await _view()


@router.put(
    "",
    summary="Choose the identity backend and how to reach it",
    permission=Permission.SSO_WRITE,
    body=IdentityBackendIn,
    response=IdentityBackendOut,
    errors=(422,),
)
async def put_identity_backend(call: Call[IdentityBackendIn, Input]) -> IdentityBackendOut:
    """Choosing ``keycloak`` queues a full reconcile: the organisation, its groups and its
    members are mirrored by the job worker, and kept in step from then on."""
    body = call.body.model_dump()
    if body["server_url"] is not None:
        body["server_url"] = str(call.body.server_url).rstrip("/")
    if body["client_secret"] is None:
        body.pop("client_secret")
    box = service.secret_box(call.request.app.state.settings.secret_key)
    await service.save_config(body, box=box, actor=call.actor)
    return await _view()


@router.post(
    "/reconcile",
    summary="Queue a reconcile: compare the backend with Tenantry and fix the drift",
    permission=Permission.SSO_WRITE,
    response=ReconcileOut,
    status=202,
)
async def reconcile_identity_backend(call: Call[Input, Input]) -> ReconcileOut:
    """The same as ``tenantry identity reconcile --org SLUG``, run by the job worker."""
    return ReconcileOut(queued=await service.request_reconcile(actor=call.actor))
