"""Which webhook addresses Tenantry posts to, and which secrets sign a request; pure.

Events carry members' names and what happens to their content, so they travel over TLS.
Plain http is accepted for this machine only (a product developer's receiver, the tests).
Addresses that carry credentials, or reach cloud metadata services or (by default) private
networks, are refused (``network``): the service would otherwise be a way to probe its
own network or leak a password in logs.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from tenants.network import NetworkPolicy, host_problem

MAX_URL = 2000
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def https_problem(scheme: str, host: str) -> str | None:
    """Why a URL of ``scheme`` to ``host`` is not one Tenantry exchanges secrets over, or
    None: ``https``, or plain ``http`` to this machine alone (a development server, the
    tests' receivers and provider). Webhook URLs and identity providers' issuers share it."""
    if scheme == "http":
        if host not in LOCAL_HOSTS:
            return "must use https:// (http:// only for localhost, during development)"
        return None
    if scheme != "https":
        return "must use https://"
    return None


def check_webhook_url(url: str, policy: NetworkPolicy | None = None) -> str | None:
    """Why Tenantry will not post to ``url``, or None when it will. ``policy``: which
    networks it may reach (``network``; the defaults when None)."""
    problem = secure_url_problem(url)
    if problem is not None:
        return problem
    return host_problem(urlsplit(url).hostname or "", policy or NetworkPolicy())


def secure_url_problem(url: str) -> str | None:
    """Why ``url`` is not one Tenantry sends secrets or people to (a webhook, an identity
    provider's endpoint), or None: at most ``MAX_URL`` characters, no whitespace or control
    characters (it may end up in a header), a host, no credentials or fragment, and https
    (or http to this machine, ``https_problem``)."""
    if len(url) > MAX_URL:
        return f"is longer than {MAX_URL} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return "is not a URL"
    if not host:
        return "names no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (the signature authenticates Tenantry)"
    if parts.fragment:
        return "must not have a #fragment"
    return https_problem(parts.scheme, host)


def secrets_in_use(
    current: str | None, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets a request is signed with: the current one, and the one before the last
    rotation until its grace period ends."""
    found = [current] if current else []
    if previous and previous_until is not None and now < previous_until:
        found.append(previous)
    return found


def rotation_problem(url: str | None, has_secret: bool) -> str | None:
    """Why the console does not rotate a product's signing secret now, or None when it may:
    while webhooks are off nothing is signed, so a new secret would protect nothing and the
    previous one's grace period would run out unused. The API still rotates then (a
    product that fears its secret leaked may want a new one before webhooks come back)."""
    if url is not None:
        return None
    if not has_secret:
        return (
            "there is no signing secret yet. One is made, and shown once, when you save an address"
        )
    return (
        "webhooks are off, so the secret signs nothing. Save an address to turn them on, "
        "then rotate it"
    )
