"""Which identity provider a connection may name, and what its claims vouch for; plain
Python.

OpenID Connect requires the issuer to be an ``https`` URL (OpenID Connect Core 1.0 §2,
"Issuer Identifier": "a case-sensitive URL using the https scheme"; Discovery 1.0 §3 for
the metadata read from it): the ID tokens Tenantry trusts, and the keys that sign them,
come from there. Plain ``http`` is accepted for this machine only, as for webhooks (a
provider run beside a development server, the tests' provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tenants.errors import FieldProblem, InvalidInputError
from tenants.webhooks.rules import https_problem, secure_url_problem


def issuer_problem(issuer: str) -> str | None:
    """Why ``issuer`` cannot be a connection's issuer, or None when it can."""
    try:
        parts = urlsplit(issuer)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if not host:
        return "expected https://…"
    return https_problem(parts.scheme, host)


def endpoint_problem(url: object) -> str | None:
    """Why ``url``, read from a provider's discovery document or typed by an admin, is not
    an endpoint Tenantry will call or send a browser to, or None: a string that is a URL
    as webhooks' must be (``secure_url_problem``: https, no credentials, fragment or
    control characters; it may end up in a Location header)."""
    if not isinstance(url, str):
        return "is not a URL"
    return secure_url_problem(url)


def check_endpoint(name: str, url: str) -> None:
    """InvalidInputError naming the field ``name`` when ``endpoint_problem`` finds one: for
    addresses an admin gives where Tenantry sends a secret or fetches keys it trusts (a
    Keycloak's server, a Shared Signals transmitter's key set)."""
    problem = endpoint_problem(url)
    if problem is not None:
        raise InvalidInputError(
            f"{name} must be an https:// URL", fields=[FieldProblem(name, problem)]
        )


def check_issuer(issuer: str) -> None:
    """InvalidInputError naming ``issuer`` when ``issuer_problem`` finds one."""
    problem = issuer_problem(issuer)
    if problem is not None:
        raise InvalidInputError(
            "the issuer must be the identity provider's https:// URL",
            fields=[FieldProblem("issuer", problem)],
        )


def email_vouched_for(claims: Mapping[str, Any]) -> bool | None:
    """Whether the provider says it verified the address (``email_verified``, OIDC Core
    §5.1): a boolean, or the text "true"/"false" some providers send; any other value is
    not a yes. None when the provider says nothing (Entra ID never does)."""
    value = claims.get("email_verified")
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


#: Google's issuer. Its ID tokens name it with or without the scheme (Google's OpenID
#: Connect guide: "https://accounts.google.com or accounts.google.com").
GOOGLE_ISSUER = "https://accounts.google.com"


def accepted_issuers(issuer: str) -> frozenset[str]:
    """The ``iss`` values that mean the connection's ``issuer``: itself, and for Google its
    scheme-less form too. Nothing else: an issuer is compared character for character."""
    if issuer == GOOGLE_ISSUER:
        return frozenset({issuer, "accounts.google.com"})
    return frozenset({issuer})


def hosted_domain_problem(
    issuer: str, claims: Mapping[str, Any], admitted: list[str]
) -> str | None:
    """Why a Google account may not sign in to an organisation admitting ``admitted``
    domains, or None. Anyone can make a consumer Google account for an address at any
    domain, and Google verifies the address: only ``hd``, the Google Workspace the account
    belongs to, says the organisation manages it (Google: "you must check this claim when
    restricting access to members of certain domains"). Other providers send no ``hd``."""
    if issuer != GOOGLE_ISSUER:
        return None
    hosted = claims.get("hd")
    if not isinstance(hosted, str) or not hosted:
        return "this Google account belongs to no Google Workspace (no hd claim)"
    if hosted.strip().lower() not in admitted:
        return f"this Google account belongs to the Google Workspace of {hosted[:253]!r}"
    return None


def claimed_group_names(value: Any, longest: int) -> set[str]:
    """The group names a groups claim gives: a list of names, or one name as a string (ADFS
    sends a single group so). A Keycloak full path (``/Staff/Teachers``, its group
    mapper's default) also names the group by its last segment. Names longer than
    ``longest`` can name no group and are left out."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            continue
        names.add(item)
        if item.startswith("/"):
            names.add(item.rstrip("/").rsplit("/", 1)[-1])
    return {n for n in names if 0 < len(n) <= longest}


def groups_overage(claims: Mapping[str, Any], groups_claim: str | None) -> str | None:
    """What to tell the admin when the provider sent, instead of the groups claim, a pointer
    to them (``_claim_names``: Entra's "overage" when a person is in more than 200 groups,
    OIDC Core §5.6.2 distributed claims): the sign-in goes on, joining no group from it.
    None otherwise."""
    names = claims.get("_claim_names")
    if not groups_claim or groups_claim in claims or not isinstance(names, Mapping):
        return None
    if groups_claim not in names:
        return None
    return (
        f"the provider sent no {groups_claim!r} claim but a pointer to it (too many groups:"
        " Entra's overage, over 200); no group was joined from this sign-in. Send fewer"
        " groups (Entra: groups assigned to the application) to map them."
    )
