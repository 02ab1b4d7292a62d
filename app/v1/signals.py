"""Shared Signals: the organisation's transmitter (``/v1/signal-transmitter``) and the push
endpoint it delivers Security Event Tokens to (``POST /ssf/{slug}/events``).

The push endpoint follows RFC 8935 (Push-Based SET Delivery Using HTTP): the body is one
SET with ``Content-Type: application/secevent+jwt``; an accepted SET gets ``202`` and an
empty body; a refused one ``400`` with ``{"err": code, "description": text}`` (§2.4).
The SET's signature (against the transmitter's JWKS) is what authenticates the caller.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.api import ApiRouter, Call
from app.auth import request_origin
from app.v1.common import NAME, Input, Output, StoredUrl
from tenants.db import tenant_transaction
from tenants.errors import NotFoundError, TenantryError
from tenants.models_base import max_length_of
from tenants.organisations.service import id_by_slug
from tenants.permissions import Permission
from tenants.ratelimits import RateLimiter
from tenants.signals import service
from tenants.signals.models import SignalTransmitter
from tenants.signals.refusals import RefusalCounter
from tenants.signals.tokens import SetError, SignalRejectedError, is_compact_jws, verify_set
from tenants.sso.oidc import JwksCache, SignInError, kid_of

router = ApiRouter("/v1/signal-transmitter", "signals")

MEDIA_TYPE = "application/secevent+jwt"
MAX_SET_BYTES = 64 * 1024


class TransmitterOut(Output):
    issuer: str
    jwks_uri: str
    audience: str
    enabled: bool
    last_event_at: datetime | None
    receiver_url: str = Field(description="Configure this as the stream's push endpoint.")


class TransmitterIn(Input):
    issuer: Annotated[AnyHttpUrl, StoredUrl(max_length_of(SignalTransmitter, "issuer"))] = Field(
        description="The transmitter's issuer (the SETs' iss)."
    )
    jwks_uri: Annotated[AnyHttpUrl, StoredUrl(max_length_of(SignalTransmitter, "jwks_uri"))] = (
        Field(description="Where the transmitter publishes its signing keys.")
    )
    audience: Annotated[str, StringConstraints(min_length=1, max_length=500), NAME] = Field(
        description="The aud the transmitter puts in SETs for us."
    )
    enabled: bool = True


async def _view(call: Call[Any, Any]) -> TransmitterOut:
    from tenants.organisations.service import get_current_organisation

    transmitter = await service.get_transmitter()
    if transmitter is None:
        raise NotFoundError("no Shared Signals transmitter is configured yet")
    org = await get_current_organisation()
    base = call.request.app.state.settings.base_url
    return TransmitterOut(
        **service.transmitter_view(transmitter), receiver_url=f"{base}/ssf/{org.slug}/events"
    )


@router.get(
    "",
    summary="Get the Shared Signals transmitter",
    permission=Permission.SSO_READ,
    response=TransmitterOut,
    errors=(404,),
)
async def get_signal_transmitter(call: Call[Input, Input]) -> TransmitterOut:
    return await _view(call)


@router.put(
    "",
    summary="Configure the Shared Signals transmitter whose security events are accepted",
    permission=Permission.SSO_WRITE,
    body=TransmitterIn,
    response=TransmitterOut,
    errors=(422,),
)
async def put_signal_transmitter(call: Call[TransmitterIn, Input]) -> TransmitterOut:
    changes = call.body.model_dump()
    issuer = str(call.body.issuer)
    # A bare host gains a trailing slash in parsing; the SETs' iss will not have it.
    changes["issuer"] = issuer.rstrip("/") if call.body.issuer.path in ("/", None) else issuer
    changes["jwks_uri"] = str(call.body.jwks_uri)
    await service.save_transmitter(changes, actor=call.actor)
    return await _view(call)


def _refuse(err: SetError, description: str, status: int = 400) -> Response:
    return JSONResponse({"err": err.value, "description": description}, status_code=status)


def _unverified_jti(token: str) -> str | None:
    import base64

    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti[:255] if isinstance(jti, str) else None


#: The one answer to a post nobody authenticated, whatever the slug: an unknown
#: organisation, one without (or with a disabled) transmitter, an unknown key and a bad
#: signature look alike from outside.
UNAUTHENTICATED = "the SET could not be authenticated for this receiver"
#: Refused unauthenticated posts one address may make per minute (on all nodes together)
#: before it gets 429.
REFUSALS_PER_MINUTE = 60


def receiver_routes(jwks: JwksCache, refusals: RefusalCounter | None = None) -> list[BaseRoute]:
    """``POST /ssf/{slug}/events``; ``jwks`` caches transmitters' keys (refetched when a
    SET names a key id not seen yet, so key rotation works). Posts that do not prove to
    come from the organisation's transmitter are counted in ``refusals`` (rate-limited per
    address, sampled into the log), never audited: only authenticated SETs reach the
    organisation's audit trail."""
    counter = refusals if refusals is not None else RefusalCounter()
    limiter = RateLimiter("ssf-refused", REFUSALS_PER_MINUTE, 60)

    async def unauthenticated(client: str, err: SetError, reason: str) -> Response:
        counter.refused(client, err.value, reason)
        wait = await limiter.retry_after(client)
        if wait is not None:
            return JSONResponse(
                {"err": "access_denied", "description": "too many refused SETs from this address"},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        if err is SetError.INVALID_REQUEST:
            return _refuse(err, reason)
        return _refuse(SetError.AUTHENTICATION_FAILED, UNAUTHENTICATED)

    async def receive_event(request: Request) -> Response:
        request_id, client = request_origin(request)
        address = client or "unknown"
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != MEDIA_TYPE:
            return _refuse(SetError.INVALID_REQUEST, f"send the SET as {MEDIA_TYPE}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_SET_BYTES:
                return _refuse(SetError.INVALID_REQUEST, "the SET is too large")
        try:
            token = body.decode("ascii").strip()
        except UnicodeDecodeError:
            return _refuse(SetError.INVALID_REQUEST, "the body is not a compact JWS")
        if not is_compact_jws(token):
            return await unauthenticated(
                address, SetError.INVALID_REQUEST, "the body is not a compact JWS"
            )
        org_id = await id_by_slug(request.path_params["slug"])
        if org_id is None:
            return await unauthenticated(address, SetError.ACCESS_DENIED, "no such receiver")
        async with tenant_transaction(org_id):
            transmitter = await service.get_transmitter()
        if transmitter is None or not transmitter.enabled:
            return await unauthenticated(
                address, SetError.ACCESS_DENIED, "the organisation accepts no security events"
            )
        actor = service.transmitter_actor(transmitter, request_id=request_id, client=client)
        try:
            keys = await jwks.get(transmitter.jwks_uri, wanted_kid=kid_of(token))
        except SignInError as exc:
            # Not the SET's fault: the transmitter should retry (RFC 8935 §2.4 leaves 5xx to it).
            return JSONResponse(
                {"err": "temporarily_unavailable", "description": exc.message},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        try:
            event = verify_set(
                token, keys, issuer=transmitter.issuer, audience=transmitter.audience
            )
            async with tenant_transaction(org_id):
                await service.receive(event, transmitter, actor=actor)
        except TenantryError as exc:
            error = (
                exc
                if isinstance(exc, SignalRejectedError)
                else SignalRejectedError(SetError.INVALID_REQUEST, exc.message)
            )
            if not error.authenticated:
                return await unauthenticated(address, error.err, error.message)
            async with tenant_transaction(org_id):
                await service.record_rejection(error, actor=actor, jti=_unverified_jti(token))
            return _refuse(error.err, error.message)
        return Response(status_code=202)

    return [Route("/ssf/{slug}/events", receive_event, methods=["POST"])]
