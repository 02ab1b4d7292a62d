"""The personal-data map: every column of every tenant table, classified once.

Each table that can hold a person's data is declared with:

- its columns and the category of what they hold (identity, contact, network, content
  metadata, free text, preference, credential) — every other text, jsonb, bytea or inet
  column of the table is declared not personal, with the reason;
- how a member's rows are found (``owner``: an SQL condition; ``$1`` is the organisation,
  ``$2`` the member's id, ``$3`` their email, ``$4`` their name);
- what an erasure does to those rows (``erase``), in order: delete them, pseudonymise
  columns, or keep them with a stated reason, legal basis and review period.

Erasure (``tenants.privacy.erasure``) runs exactly these steps and its evidence lists the
kept rows with their reasons; ``tests/tenants/test_datamap.py`` fails when a column of a
tenant table in the migrated database is missing here; the residue test scans every
column for a person's data after an erasure and allows only what this map keeps.
A privacy request's erasure and a departure's purge erase alike: both end with the person
gone from everything but what is kept here for a reason.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from tenants.organisations.days import add_months


class Category(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    NETWORK = "network"
    CONTENT_METADATA = "content metadata"
    FREE_TEXT = "free text"
    PREFERENCE = "preference"
    CREDENTIAL = "credential"


class Action(StrEnum):
    DELETE = "delete"
    PSEUDONYMISE = "pseudonymise"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class Step:
    """One treatment of the member's rows of a table.

    ``where`` narrows the table's owner condition (SQL, same parameters); ``set`` is the
    SET clause of a pseudonymisation; a kept step names its reason, legal basis and when
    the organisation reviews whether it still needs the rows: ``review_days`` days or
    ``review_years`` calendar years after the erasure, or, when ``review_column`` is set,
    the latest date the kept rows hold in that column (a legal hold's own review date),
    ``review_days`` serving only when none of them holds one. A step in years also has
    ``review_days`` (365 a year), to say its period in words, never to count a date.
    """

    action: Action
    where: str | None = None
    set: str | None = None
    reason: str | None = None
    basis: str | None = None
    review_days: int | None = None
    review_years: int | None = None
    review_column: str | None = None

    def review_on(self, today: date, latest: date | None = None) -> date:
        """When kept rows are reviewed, for an erasure on ``today``; ``latest`` is the
        latest ``review_column`` date of the kept rows (None: none holds one)."""
        if self.review_column is not None and latest is not None:
            return latest
        if self.review_years is not None:
            return add_years(today, self.review_years)
        if self.review_days is None:
            raise ValueError("a kept step states when it is reviewed")
        return today + timedelta(days=self.review_days)


def add_years(day: date, years: int) -> date:
    """The same date ``years`` calendar years later; 29 February becomes 28 February in a
    year that has none (not N x 365 days, which falls a day short per leap year passed)."""
    return add_months(day, 12 * years)


@dataclass(frozen=True, slots=True)
class Years:
    """A review period in calendar years (``keep(..., Years(6))``)."""

    count: int


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    #: Personal columns and their category.
    personal: dict[str, Category]
    #: Columns of text-like types that hold no personal data, each with why.
    not_personal: dict[str, str] = field(default_factory=dict)
    #: How the member's rows are found; None: the table holds nobody's data.
    owner: str | None = None
    #: What an erasure does to the member's rows, in order.
    erase: tuple[Step, ...] = ()
    #: The file of the export bundle that carries these rows (None: not exported, and why
    #: in ``export_note``).
    export: str | None = None
    export_note: str | None = None


def delete(where: str | None = None) -> Step:
    return Step(Action.DELETE, where=where)


def pseudonymise(set_clause: str, where: str | None = None) -> Step:
    return Step(Action.PSEUDONYMISE, where=where, set=set_clause)


def keep(
    reason: str,
    basis: str,
    review: int | Years,
    where: str | None = None,
    review_column: str | None = None,
) -> Step:
    """Rows kept for ``reason`` on ``basis``, reviewed ``review`` days (an int) or calendar
    years (``Years``) after the erasure, or on the latest date in ``review_column``."""
    if isinstance(review, Years):
        # review_days stays the period's length for wording alone ("3 years" on the account
        # page's leaving section, ``kept_for``); the date is counted in calendar years.
        return Step(Action.KEEP, where=where, reason=reason, basis=basis,
                    review_days=365 * review.count, review_years=review.count,
                    review_column=review_column)
    return Step(Action.KEEP, where=where, reason=reason, basis=basis, review_days=review,
                review_column=review_column)


#: The name erased people go by where a record of them must stay.
ERASED = "erased member"
ACTOR_IS_MEMBER = "actor = 'member:' || $2::uuid::text"
NAMES_MEMBER = "(strpos({col}, $3) > 0 OR (length($4) >= 4 AND strpos({col}, $4) > 0))"

CONFIG = "the organisation's configuration, not about a person"
STATE = "a state or kind from a fixed list"
HASH = "a hash or digest; reveals nothing"
ID = "an opaque identifier or key"

# fmt: off
TABLES: tuple[Table, ...] = (
    Table(
        "members",
        personal={"email": Category.CONTACT, "name": Category.IDENTITY,
                  "idp_subject": Category.IDENTITY, "external_id": Category.IDENTITY,
                  "time_zone": Category.PREFERENCE},
        not_personal={"roles": "the roles the organisation gave (kept with the record)",
                      "status": STATE},
        owner="id = $2",
        erase=(pseudonymise(
            f"name = '{ERASED}', email = 'erased-' || id::text || '@invalid', "
            "idp_subject = NULL, external_id = NULL, manager_id = NULL, roles = '[]'::jsonb, "
            "time_zone = NULL, "
            "status = 'purged', status_changed_at = now()"),),
        export="profile.json",
    ),
    Table(
        "scim_users",
        personal={"user_name": Category.IDENTITY, "attributes": Category.CONTACT},
        owner="id = $2", erase=(delete(),), export="scim.json",
    ),
    Table(
        "member_choices",
        personal={"value": Category.PREFERENCE},
        not_personal={"setting": "the setting's key from the catalogue"},
        owner="member_id = $2", erase=(delete(),), export="settings.json",
    ),
    Table(
        "policy_change_notices",
        personal={},
        not_personal={"setting": "the setting's key from the catalogue"},
        owner="member_id = $2", erase=(delete(),),
        export_note="what the member was told is the email itself, in emails.json",
    ),
    Table(
        "sessions",
        personal={"idp_subject": Category.IDENTITY, "idp_sid": Category.IDENTITY,
                  "idp_id_token_enc": Category.CREDENTIAL,
                  "client_addr": Category.NETWORK, "user_agent": Category.NETWORK},
        not_personal={"secret_hash": HASH, "auth_method": STATE,
                      "revoked_reason": "why a session ended, from the service's own words"},
        owner="member_id = $2", erase=(delete(),), export="sessions.json",
    ),
    Table(
        "sign_ins",
        personal={"email": Category.CONTACT, "idp_subject": Category.IDENTITY,
                  "client_addr": Category.NETWORK, "user_agent": Category.NETWORK},
        not_personal={"method": STATE, "outcome": STATE, "reason": STATE,
                      "idp": "the identity provider's issuer, the organisation's configuration",
                      "detail": "what went wrong in the sign-in protocol, in Tenantry's words"},
        owner="(member_id = $2 OR email = lower($3))", erase=(delete(),),
        export="sign_ins.json",
    ),
    Table(
        "local_credentials",
        personal={"password_hash": Category.CREDENTIAL},
        owner="member_id = $2", erase=(delete(),),
        export_note="a password hash is not given out, not even to its owner",
    ),
    Table(
        "group_memberships", personal={}, owner="member_id = $2", erase=(delete(),),
        export="groups.json",
    ),
    Table(
        "product_accounts",
        personal={},
        not_personal={"status": STATE},
        owner="member_id = $2",
        erase=(pseudonymise("status = 'removed', updated_at = now()"),),
        export="product_accounts.json",
    ),
    Table(
        "content_items",
        personal={"title": Category.CONTENT_METADATA, "export_url": Category.CONTENT_METADATA,
                  "hold_member_text": Category.FREE_TEXT},
        not_personal={"external_id": "the product's id of the item", "kind": STATE,
                      "status": STATE},
        owner="member_id = $2",
        erase=(
            keep("under legal hold", "legal obligation (GDPR Art. 17(3)(b), (e))", 90,
                 where="legal_hold", review_column="hold_review_on"),
            keep("work content or the organisation's archive: the organisation's, not the "
                 "person's", "legitimate interest of the organisation in its own work "
                 "(GDPR Art. 6(1)(f))", Years(1),
                 where="NOT legal_hold AND (kind = 'organisation' OR status = 'archived')"),
            delete(where="NOT legal_hold AND kind <> 'organisation' AND status <> 'archived'"),
        ),
        export="content_items.json",
    ),
    Table(
        "access_grants",
        personal={"justification": Category.FREE_TEXT, "case_reference": Category.FREE_TEXT,
                  "decision_reason": Category.FREE_TEXT, "review_note": Category.FREE_TEXT,
                  "revoke_reason": Category.FREE_TEXT,
                  "disclosure_delay_reason": Category.FREE_TEXT,
                  "requested_by_display": Category.IDENTITY,
                  "requested_by": Category.IDENTITY, "revoked_by": Category.IDENTITY},
        not_personal={"categories": STATE, "product_ids": ID, "status": STATE},
        owner="(member_id = $2 OR admin_id = $2)",
        erase=(
            pseudonymise(f"requested_by_display = '{ERASED}'",
                         where="requested_by = 'member:' || $2::uuid::text"),
            keep("who was allowed to see the person's data, and why", "accountability for "
                 "access to personal data (GDPR Art. 5(2), 30)", Years(3)),
        ),
        export="data_access.json",
    ),
    Table(
        "access_reviews",
        personal={"created_by_display": Category.IDENTITY, "created_by": Category.IDENTITY},
        not_personal={"name": CONFIG, "scopes": STATE, "reviewer_rule": STATE,
                      "named_reviewer_ids": ID, "recurrence_unit": STATE,
                      "default_on_due": STATE, "status": STATE, "time_zone": CONFIG},
        owner="owner_id = $2",
        erase=(
            pseudonymise(f"created_by_display = '{ERASED}'"),
            keep("the campaign the person ran (who owned it)", "accountability for reviews "
                 "of access to personal data (GDPR Art. 5(2), 32)", Years(3)),
        ),
        export_note="a campaign's settings; the person's own part is their review items",
    ),
    Table(
        "access_review_items",
        personal={"subject_label": Category.IDENTITY, "reason": Category.FREE_TEXT,
                  "decided_by_display": Category.IDENTITY},
        not_personal={"kind": STATE, "role": STATE, "reviewer_ids": ID, "state": STATE,
                      "outcome_note": "what applying a revocation found, in the service's "
                                      "own words"},
        owner="(member_id = $2 OR decided_by = $2)",
        erase=(
            pseudonymise(f"subject_label = '{ERASED}'", where="member_id = $2"),
            pseudonymise(f"decided_by_display = '{ERASED}'", where="decided_by = $2"),
            keep("whether the person's access was recertified or revoked, and why",
                 "accountability for reviews of access to personal data (GDPR Art. 5(2), 32)",
                 Years(3)),
        ),
        export_note="the organisation's review of the person's access (the access itself is "
                    "in profile.json and data_access.json)",
    ),
    Table(
        "access_log",
        personal={"checked_by": Category.IDENTITY},
        not_personal={"category": STATE, "reason": STATE},
        owner="(member_id = $2 OR admin_id = $2)",
        erase=(keep("each access to the person's data", "accountability for access to "
                    "personal data (GDPR Art. 5(2), 30)", Years(3)),),
        export="data_access.json",
    ),
    Table(
        "privacy_requests",
        personal={"message": Category.FREE_TEXT, "answer": Category.FREE_TEXT,
                  "extension_reason": Category.FREE_TEXT, "closed_by": Category.IDENTITY,
                  "erasure_evidence": Category.CONTENT_METADATA,
                  "product_reference": Category.IDENTITY},
        not_personal={"kind": STATE, "status": STATE, "source": STATE},
        owner="member_id = $2",
        erase=(
            pseudonymise("message = '[erased]', product_reference = NULL"),
            keep("the request and how it was answered, with the erasure's evidence",
                 "proof that the request was answered (GDPR Art. 5(2), 12)", Years(3)),
        ),
        export="privacy_requests.json",
    ),
    Table(
        "privacy_request_events",
        personal={"actor_display": Category.IDENTITY, "actor": Category.IDENTITY,
                  "body": Category.FREE_TEXT, "data": Category.CONTENT_METADATA},
        not_personal={"kind": STATE},
        owner="request_id IN (SELECT r.id FROM privacy_requests r "
              "WHERE r.tenant_id = $1 AND r.member_id = $2) OR actor = 'member:' || $2::uuid::text",
        erase=(
            pseudonymise(f"actor_display = '{ERASED}'", where=ACTOR_IS_MEMBER),
            keep("the timeline of the person's requests", "proof that the request was "
                 "answered (GDPR Art. 5(2), 12)", Years(3)),
        ),
        export="privacy_requests.json",
    ),
    Table(
        "privacy_export_parts",
        personal={"data": Category.CONTENT_METADATA, "uploaded_by": Category.IDENTITY},
        owner="export_id IN (SELECT x.id FROM privacy_exports x JOIN privacy_requests r "
              "ON r.tenant_id = x.tenant_id AND r.id = x.request_id "
              "WHERE x.tenant_id = $1 AND r.member_id = $2)",
        erase=(delete(),),
        export_note="products' parts go into the bundle as products/<key>.json",
    ),
    Table(
        "privacy_exports",
        personal={"bundle": Category.CONTENT_METADATA},
        not_personal={"expected_product_ids": ID, "files": "file names and sizes",
                      "sha256": HASH, "status": STATE},
        owner="request_id IN (SELECT r.id FROM privacy_requests r "
              "WHERE r.tenant_id = $1 AND r.member_id = $2)",
        erase=(delete(),),
        export_note="earlier copies of the person's data; deleted by an erasure",
    ),
    Table(
        "mail_messages",
        personal={"recipients": Category.CONTACT, "subject": Category.FREE_TEXT,
                  "text": Category.FREE_TEXT, "html": Category.FREE_TEXT},
        not_personal={"template": STATE, "key": ID, "status": STATE,
                      "last_error": "the mail server's answer"},
        owner=f"(recipients ? $3 OR {NAMES_MEMBER.format(col='text')})",
        erase=(delete(),),
        export="emails.json",
    ),
    Table(
        "outbox_events",
        personal={"payload": Category.IDENTITY},
        not_personal={"topic": STATE, "idempotency_key": ID},
        owner="payload->>'member_id' = $2::uuid::text",
        erase=(pseudonymise(
            "payload = payload - 'member_email' - 'email' - 'name' - 'member_name' "
            "- 'idp_subject' - 'external_id'"),),
        export_note="notices to products, by member id; their personal fields are removed",
    ),
    Table(
        "departures",
        personal={"reason": Category.FREE_TEXT, "started_by": Category.IDENTITY},
        not_personal={"plan_totals": "counts", "policy": CONFIG, "status": STATE},
        owner="member_id = $2",
        erase=(
            pseudonymise("reason = '[erased]'"),
            keep("the departure's record: dates, steps and what happened to the content",
                 "the organisation's records of employment or enrolment (legal obligation)",
                 Years(6)),
        ),
        export="departures.json",
    ),
    Table(
        "member_keys",
        personal={"key": Category.CREDENTIAL},
        owner="member_id = $2", erase=(delete(),),
        export_note="the key that seals the person's fields in the audit trail",
    ),
    Table(
        "audit_events",
        personal={"actor_display": Category.IDENTITY, "client_addr": Category.NETWORK,
                  "before": Category.IDENTITY, "after": Category.IDENTITY,
                  "actor": Category.IDENTITY},
        not_personal={"action": STATE, "target_type": STATE, "target_id": ID,
                      "request_id": ID},
        owner="(actor = 'member:' || $2::uuid::text OR (target_type = 'member' "
              "AND target_id = $2::uuid::text))",
        erase=(keep("the tamper-evident audit trail: its personal fields are sealed with the "
                    "person's key, which the erasure deletes; only pseudonymous ids remain",
                    "accountability (GDPR Art. 5(2)); integrity of the record", Years(6)),),
        export="audit_events.json",
    ),
    # --- tables that hold nobody's personal data -------------------------------------------
    Table("api_tokens", personal={}, not_personal={
        "created_by": "the creator's pseudonymous id (member:<id>)", "name": CONFIG,
        "scopes": CONFIG, "secret_hash": HASH}),
    Table("audit_chain", personal={}, not_personal={"hash": HASH, "prev_hash": HASH}),
    Table("audit_heads", personal={}, not_personal={"hash": HASH}),
    Table("declared_settings", personal={}, not_personal={"definition": CONFIG, "key": CONFIG}),
    Table("departure_policies", personal={}, not_personal={
        "default_action": CONFIG, "personal_outcome": CONFIG, "product_actions": CONFIG}),
    Table("departure_steps", personal={}, not_personal={
        "last_error": "the worker's error text", "name": STATE, "status": STATE}),
    Table("groups", personal={}, not_personal={"description": CONFIG, "name": CONFIG}),
    Table("identity_backends", personal={}, not_personal={
        "client_id": CONFIG, "client_secret_enc": "an encrypted secret", "kind": STATE,
        "last_error": "the backend's error text", "realm": CONFIG, "server_url": CONFIG}),
    Table("jobs", personal={}, not_personal={
        "checkpoint": "progress counters and ids", "key": ID, "kind": STATE,
        "last_error": "the worker's error text", "locked_by": "a worker's name",
        "payload": "pseudonymous ids", "queue": ID, "status": STATE}),
    Table("domains", personal={}, not_personal={
        "name": "a domain the organisation proves it owns", "token": ID, "proof": STATE,
        "status": STATE, "last_check_result": "the service's own words about a DNS check"}),
    Table("entra_claims_providers", personal={}, not_personal={
        "entra_tenant_id": CONFIG, "app_id": CONFIG, "app_id_uri": CONFIG, "match_by": STATE}),
    Table("member_status_days", personal={}, not_personal={"status": STATE}),
    Table("tenant_counters", personal={}, not_personal={"name": "the name of a row count"}),
    Table("login_attempts", personal={}, not_personal={
        "browser_binding": HASH, "code_verifier": "a one-time secret", "nonce": ID,
        "return_to": "a path in the service", "state": ID, "issuer": CONFIG,
        "client_id": CONFIG}),
    Table("mail_template_overrides", personal={}, not_personal={
        "intro": CONFIG, "subject": CONFIG, "template": CONFIG}),
    Table("policy_rules", personal={}, not_personal={
        "reason": CONFIG, "replaces": CONFIG, "setting": CONFIG, "value": CONFIG}),
    Table("policy_versions", personal={}, not_personal={
        "actor": "the author's pseudonymous id", "rules": CONFIG, "summary": CONFIG}),
    Table("product_clients", personal={}, not_personal={
        "client_id": ID, "name": CONFIG, "scopes": CONFIG, "secret_hash": HASH}),
    Table("products", personal={}, not_personal={
        "description": CONFIG, "key": CONFIG, "name": CONFIG,
        "webhook_previous_secret": "an encrypted secret", "webhook_secret": "an encrypted secret",
        "webhook_url": CONFIG}),
    Table("scim_groups", personal={}, not_personal={"external_id": ID}),
    Table("scim_settings", personal={}, not_personal={
        "deprovisioning": CONFIG, "unit_attribute": CONFIG}),
    Table("seen_logout_tokens", personal={}, not_personal={"jti": ID}),
    Table("seen_security_events", personal={}, not_personal={"jti": ID}),
    Table("signal_transmitters", personal={}, not_personal={
        "audience": CONFIG, "issuer": CONFIG, "jwks_uri": CONFIG}),
    Table("sso_connections", personal={}, not_personal={
        "allowed_domains": CONFIG, "client_id": CONFIG,
        "client_secret_enc": "an encrypted secret", "email_claim": CONFIG,
        "groups_claim": CONFIG, "issuer": CONFIG, "last_test_result": CONFIG,
        "name_claim": CONFIG, "scopes": CONFIG, "unit_claim": CONFIG,
        "sign_out_at_provider": CONFIG,
        "previous_config": "the previous connection settings (secret encrypted)"}),
    Table("units", personal={}, not_personal={"name": CONFIG, "path": CONFIG}),
    Table("webhook_deliveries", personal={}, not_personal={
        "idempotency_key": ID, "last_error": "the receiver's answer", "status": STATE,
        "topic": STATE}),
)
# fmt: on

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def classified(table: str, column: str) -> bool:
    """Whether the map says what ``table.column`` holds."""
    entry = BY_NAME.get(table)
    return entry is not None and (column in entry.personal or column in entry.not_personal)


def personal_tables() -> list[Table]:
    """The tables that hold a person's data, in erasure order."""
    return [t for t in TABLES if t.owner is not None]


@functools.cache
def kept_kinds() -> tuple[Step, ...]:
    """Every kind of record an erasure (a departure's purge, an erasure request) keeps,
    once each (its reason, basis and review period), as the map declares them: what a
    member is told before leaving stays."""
    found: dict[str, Step] = {}
    for table in TABLES:
        for step in table.erase:
            if step.action is Action.KEEP and step.reason:
                found.setdefault(step.reason, step)
    return tuple(found.values())


def export_sources() -> dict[str, list[str]]:
    """Each export file and the tables it is made from (for the bundle's index)."""
    sources: dict[str, list[str]] = {}
    for table in TABLES:
        if table.export:
            sources.setdefault(table.export, []).append(table.name)
    return sources


def size() -> dict[str, object]:
    """The map in numbers (for the README and the closing note)."""
    per_category = Counter(c.value for t in TABLES for c in t.personal.values())
    return {
        "tables": len(TABLES),
        "personal_tables": len(personal_tables()),
        "personal_columns": sum(per_category.values()),
        "not_personal_columns": sum(len(t.not_personal) for t in TABLES),
        "by_category": dict(sorted(per_category.items())),
    }
