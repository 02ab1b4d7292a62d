"""The ``identity.*`` job handlers and reconcile: they read what the backend should hold
(in a short tenant transaction), talk to the backend outside any transaction, then record
the outcome (audit event, last success or error) in another short transaction.

Backend down (``BackendUnavailableError``) → ``RetryLaterError``: the job is retried with
exponential backoff and, because jobs of one member share a queue, every later change of
that member waits behind it; when the backend is back they run in order. A refusal that
retrying cannot fix (``BackendRejectedError``) → ``PermanentJobError`` (dead; the console
offers a retry once someone fixed the cause, and reconcile repairs any drift).

The worker calls ``configure`` once with the service's secret key (backend and IdP client
secrets are stored sealed).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import httpx

from tenants import db, network
from tenants.actors import Actor, system_actor
from tenants.identity import changes, service
from tenants.identity.errors import (
    BackendNotConfiguredError,
    BackendRejectedError,
    BackendUnavailableError,
    IdentityBackendError,
)
from tenants.identity.keycloak import KeycloakConfig, KeycloakDirectory
from tenants.identity.port import (
    DirectoryOrganisation,
    DirectoryState,
    IdentityDirectory,
    LinkedIdp,
)
from tenants.identity.rules import Drift, DriftKind, find_drift
from tenants.identity.setup import SetupCheck, UnmanagedPolicy
from tenants.ids import OrgId
from tenants.jobs.registry import PermanentJobError, RetryLaterError, RunningJob, handler
from tenants.secrets import SecretBox, SecretDecryptionError
from tenants.sso.oidc import RelyingParty, SignInError

log = logging.getLogger(__name__)

ACTOR: Actor = system_actor("identity-sync")
#: Reasons after which a disabled member's sessions at the backend are ended too.
ENDS_SESSIONS = frozenset({"suspend", "depart", "log_out"})
T = TypeVar("T")


@dataclass
class _Config:
    box: SecretBox
    sso_box: SecretBox
    directory: Callable[[KeycloakConfig], IdentityDirectory]


_config: _Config | None = None


def configure(
    secret_key: str,
    *,
    directory: Callable[[KeycloakConfig], IdentityDirectory] = KeycloakDirectory,
) -> None:
    """Give the handlers the service's secret key (and how to reach a Keycloak)."""
    global _config
    _config = _Config(
        service.secret_box(secret_key), SecretBox(secret_key, "sso-client-secrets"), directory
    )


def ensure_configured(secret_key: str) -> None:
    """Configure with the defaults unless this process already did (the web app, which
    runs setup from the console, shares the handlers' configuration with an embedded
    worker)."""
    if _config is None:
        configure(secret_key)


def _configured() -> _Config:
    if _config is None:
        raise RetryLaterError("the identity sync is not configured in this worker yet")
    return _config


@dataclass(frozen=True, slots=True)
class _Context:
    directory: IdentityDirectory
    organisation: DirectoryOrganisation


async def _open(org_id: OrgId) -> _Context | None:
    """The backend of the organisation and the organisation as it should be mirrored;
    None when the organisation mirrors nothing (any more)."""
    config = _configured()
    try:
        async with db.tenant_transaction(org_id):
            keycloak = await service.keycloak_config(config.box)
            if keycloak is None:
                return None
            organisation = await service.desired_organisation()
    except SecretDecryptionError as exc:
        raise PermanentJobError("the backend's client secret cannot be decrypted") from exc
    return _Context(config.directory(keycloak), organisation)


async def _talk(org_id: OrgId, subject: tuple[str, object], work: Awaitable[list[str]]) -> None:
    """Run ``work`` against the backend and record what it changed or why it failed."""
    try:
        made = await work
    except BackendUnavailableError as exc:
        async with db.tenant_transaction(org_id):
            await service.note_sync(*subject, [], actor=ACTOR, error=exc.message)
        raise RetryLaterError(exc.message) from exc
    except BackendRejectedError as exc:
        async with db.tenant_transaction(org_id):
            await service.note_sync(*subject, [], actor=ACTOR, error=exc.message)
        raise PermanentJobError(exc.message) from exc
    async with db.tenant_transaction(org_id):
        await service.note_sync(*subject, made, actor=ACTOR)


@handler(changes.MEMBER_JOB)
async def sync_member(job: RunningJob) -> None:
    """Mirror one member's current state; end their backend sessions when the change
    disabled them (suspension) or asked for it."""
    context = await _open(job.org_id)
    if context is None:
        return
    member_id = uuid.UUID(job.payload["member_id"])
    what = str(job.payload.get("what", ""))
    async with db.tenant_transaction(job.org_id):
        member = await service.desired_member(member_id)

    async def work() -> list[str]:
        directory, org = context.directory, context.organisation
        if member is None:
            return await directory.remove_member(org, str(member_id))
        made = await directory.upsert_member(org, member)
        if what in ENDS_SESSIONS and (what == "log_out" or not member.enabled):
            made += await directory.log_out(org, str(member_id))
        return made

    try:
        await _talk(job.org_id, ("member", member_id), work())
    finally:
        await context.directory.aclose()


@handler(changes.GROUP_JOB)
async def sync_group(job: RunningJob) -> None:
    context = await _open(job.org_id)
    if context is None:
        return
    group_id = uuid.UUID(job.payload["group_id"])
    async with db.tenant_transaction(job.org_id):
        group = await service.desired_group(group_id)

    async def work() -> list[str]:
        if group is None:
            return await context.directory.remove_group(context.organisation, str(group_id))
        return await context.directory.upsert_group(context.organisation, group)

    try:
        await _talk(job.org_id, ("group", group_id), work())
    finally:
        await context.directory.aclose()


async def _with_idps(org_id: OrgId, organisation: DirectoryOrganisation) -> DirectoryOrganisation:
    """The organisation with its own OpenID provider to link, found by discovery."""
    async with db.tenant_transaction(org_id):
        link = await service.sso_link(_configured().sso_box)
    if link is None:
        return organisation
    # Policed as sign-in's fetches are: the outbound network policy, and a bound on the
    # answer (a discovery document is a few kilobytes).
    transport = network.PolicedTransport(max_response_bytes=1 << 20)
    async with httpx.AsyncClient(transport=transport, timeout=10.0, follow_redirects=False) as http:
        try:
            metadata = await RelyingParty(http).metadata(link.issuer)
        except SignInError as exc:
            raise BackendUnavailableError(
                f"the organisation's identity provider cannot be read: {exc.message}"
            ) from exc
        except network.Refused as exc:
            raise BackendUnavailableError(
                f"the organisation's identity provider cannot be read: its address is refused"
                f" by the outbound network policy ({exc})"
            ) from exc
    idp = LinkedIdp(
        alias=f"{organisation.alias}-oidc",
        issuer=metadata.issuer,
        client_id=link.client_id,
        client_secret=link.client_secret,
        authorization_url=metadata.authorization_endpoint,
        token_url=metadata.token_endpoint,
        jwks_url=metadata.jwks_uri,
        userinfo_url=metadata.userinfo_endpoint,
        logout_url=metadata.end_session_endpoint,
    )
    return replace(organisation, idps=(idp,))


@handler(changes.ORGANISATION_JOB)
async def sync_organisation(job: RunningJob) -> None:
    context = await _open(job.org_id)
    if context is None:
        return

    async def work() -> list[str]:
        organisation = await _with_idps(job.org_id, context.organisation)
        return await context.directory.ensure_organisation(organisation)

    try:
        await _talk(job.org_id, ("organisation", job.org_id), work())
    finally:
        await context.directory.aclose()


@handler(changes.RECONCILE_JOB)
async def reconcile_job(job: RunningJob) -> None:
    try:
        await reconcile(job.org_id, fix=True, actor=ACTOR)
    except BackendNotConfiguredError:
        return
    except IdentityBackendError as exc:
        async with db.tenant_transaction(job.org_id):
            await service.note_sync("organisation", job.org_id, [], actor=ACTOR, error=exc.message)
        if isinstance(exc, BackendUnavailableError):
            raise RetryLaterError(exc.message) from exc
        raise PermanentJobError(exc.message) from exc


# --- setup -------------------------------------------------------------------------------


async def set_up(
    org_id: OrgId,
    *,
    prepare: bool,
    actor: Actor,
    policy: UnmanagedPolicy = UnmanagedPolicy.DECLARE,
) -> list[SetupCheck]:
    """Check the organisation's backend check by check (``tenants.identity.setup``) and,
    with ``prepare``, make the changes Tenantry can make itself. When every check passes
    after preparing, a full reconcile is queued (jobs that died on the missing setup are
    repaired by it). Raises BackendNotConfiguredError for a ``local`` organisation and
    BackendUnavailableError when the backend cannot be reached."""
    context = await _open(org_id)
    if context is None:
        raise BackendNotConfiguredError(
            "this organisation mirrors nothing: its identity backend is local"
        )
    try:
        checks = await context.directory.check_setup(
            context.organisation, prepare=prepare, policy=policy
        )
    finally:
        await context.directory.aclose()
    failing = [c for c in checks if not c.ok]
    async with db.tenant_transaction(org_id):
        from tenants.audit import service as audit

        await audit.record(
            "identity.setup_checked",
            "organisation",
            org_id,
            actor=actor,
            after={
                "prepare": prepare,
                "checks": {c.name.value: "ok" if c.ok else "failing" for c in checks},
                "changed": [c.name.value for c in checks if c.changed],
            },
        )
        if failing:
            await service.note_sync(
                "organisation",
                org_id,
                [],
                actor=actor,
                error=f"setup check {failing[0].name.value} fails: {failing[0].detail}",
            )
        elif prepare:
            await changes.reconcile_requested("setup", revive=True)
    return checks


# --- reconcile ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    drift: list[Drift]
    #: What the backend changed while fixing (empty on a dry run).
    fixed: list[str]
    dry_run: bool


async def reconcile(org_id: OrgId, *, fix: bool, actor: Actor) -> ReconcileReport:
    """Compare what the organisation's backend holds with what it should, and (unless
    ``fix`` is False) make it so. Raises BackendNotConfiguredError for a ``local``
    organisation and the port's errors when the backend fails."""
    context = await _open(org_id)
    if context is None:
        raise BackendNotConfiguredError(
            "this organisation mirrors nothing: its identity backend is local"
        )
    directory = context.directory
    try:
        async with db.tenant_transaction(org_id):
            desired = await service.desired_state()
        actual = await directory.snapshot(context.organisation)
        drift = find_drift(desired, actual)
        fixed: list[str] = []
        if fix:
            fixed = await _fix(org_id, directory, drift, desired)
        async with db.tenant_transaction(org_id):
            await service.note_sync("organisation", org_id, [], actor=actor)
            from tenants.audit import service as audit

            await audit.record(
                "identity.reconciled",
                "organisation",
                org_id,
                actor=actor,
                after={
                    "dry_run": not fix,
                    "drift": [f"{d.kind.value} {d.label}" for d in drift][:200],
                    "fixed": fixed[:200],
                },
            )
        return ReconcileReport(drift, fixed, not fix)
    finally:
        await directory.aclose()


async def _fix(
    org_id: OrgId,
    directory: IdentityDirectory,
    drift: list[Drift],
    desired: DirectoryState,
) -> list[str]:
    assert desired.organisation is not None
    org = desired.organisation
    made: list[str] = []
    kinds = {d.kind for d in drift}
    if kinds & {DriftKind.ORGANISATION_MISSING, DriftKind.ORGANISATION_DIFFERS}:
        made += await directory.ensure_organisation(await _with_idps(org_id, org))
    for item in drift:
        if item.kind in (DriftKind.GROUP_MISSING, DriftKind.GROUP_DIFFERS):
            made += await directory.upsert_group(org, desired.groups[item.subject_id])
        elif item.kind is DriftKind.GROUP_EXTRA:
            made += await directory.remove_group(org, item.subject_id)
    done: set[str] = set()
    for item in drift:
        if (
            item.kind
            in (
                DriftKind.MEMBER_MISSING,
                DriftKind.MEMBER_DIFFERS,
                DriftKind.MEMBER_OUTSIDE_ORGANISATION,
            )
            and item.subject_id not in done
        ):
            done.add(item.subject_id)
            member = desired.members[item.subject_id]
            made += [f"{member.email}: {c}" for c in await directory.upsert_member(org, member)]
        elif item.kind is DriftKind.MEMBER_EXTRA:
            made += [
                f"{item.label}: {c}" for c in await directory.remove_member(org, item.subject_id)
            ]
    return made
