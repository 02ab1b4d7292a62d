"""Which identity provider a connection may name; plain Python.

OpenID Connect requires the issuer to be an ``https`` URL (OpenID Connect Core 1.0 §2,
"Issuer Identifier": "a case-sensitive URL using the https scheme"; Discovery 1.0 §3 for
the metadata read from it): the ID tokens Tenantry trusts, and the keys that sign them,
come from there. Plain ``http`` is accepted for this machine only, as for webhooks (a
provider run beside a development server, the tests' provider).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tenants.errors import FieldProblem, InvalidInputError
from tenants.webhooks.rules import https_problem


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


#: The longest endpoint URL a discovery document may name (as for webhooks).
MAX_ENDPOINT = 2000


def endpoint_problem(url: object) -> str | None:
    """Why ``url``, read from a provider's discovery document, is not an endpoint Tenantry
    will call or send a browser to, or None: a string, as long as a URL may be here, with no
    whitespace or control characters (it may end up in a Location header), ``https`` (or
    http on this machine) and no credentials or fragment."""
    if not isinstance(url, str):
        return "is not a URL"
    if len(url) > MAX_ENDPOINT:
        return f"is longer than {MAX_ENDPOINT} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return "is not a URL"
    if not host:
        return "is not an https:// URL"
    problem = https_problem(parts.scheme, host)
    if problem is not None:
        return problem
    if parts.username is not None or parts.password is not None:
        return "carries a user name or password"
    if parts.fragment:
        return "has a #fragment"
    return None


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
