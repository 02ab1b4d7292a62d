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


def check_issuer(issuer: str) -> None:
    """InvalidInputError naming ``issuer`` when ``issuer_problem`` finds one."""
    problem = issuer_problem(issuer)
    if problem is not None:
        raise InvalidInputError(
            "the issuer must be the identity provider's https:// URL",
            fields=[FieldProblem("issuer", problem)],
        )
