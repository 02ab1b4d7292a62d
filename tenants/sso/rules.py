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
