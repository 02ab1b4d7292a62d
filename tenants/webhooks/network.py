"""Which networks webhooks may reach: the service must not be a way into its own.

A product's admin types the webhook address; Tenantry then posts to it from inside the
operator's network. Unchecked, ``https://10.0.0.5/`` or ``https://intranet/`` would have
the service probe and post to machines no tenant should reach (SSRF). So by default an
address must be on the internet: private, shared, reserved and link-local addresses are
refused, and so are one-label names (``intranet``), which resolve through the machine's
search domains. The machine itself (loopback) is allowed outside production, for a
developer's receiver and the tests. An operator whose products live on a private network
allows it with ``TENANTRY_WEBHOOK_PRIVATE_NETWORKS=true``.

The check runs when the address is saved (on the text) and again before every delivery
(on what the name resolves to then), so a name pointed at a private address later is
refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    #: The machine itself (127.0.0.0/8, ::1, localhost).
    loopback: bool = True
    #: Private, shared (CGNAT), reserved and unique-local networks, and one-label names.
    private: bool = False


_policy = NetworkPolicy()


def configure(policy: NetworkPolicy) -> None:
    """Set the process's policy from its settings (``app.settings``), once at start."""
    global _policy
    _policy = policy


def current() -> NetworkPolicy:
    return _policy


def address_problem(address: IPAddress, policy: NetworkPolicy) -> str | None:
    """Why a webhook must not go to ``address`` (words that follow "which"), or None.
    Pure."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "is not a web server's address"
    if address.is_loopback:
        return None if policy.loopback else "is this machine's own"
    if not address.is_global and not policy.private:
        return (
            "is on a private network: webhooks go to products on the internet unless the "
            "operator allows private networks"
        )
    return None


def host_problem(host: str, policy: NetworkPolicy) -> str | None:
    """Why a webhook must not go to ``host`` as written (an address, or a name), or None.
    Pure: a name's addresses are checked when it is resolved (``resolved_problem``)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        problem = address_problem(address, policy)
        shown = getattr(address, "ipv4_mapped", None) or address
        return None if problem is None else f"names {shown}, which {problem}"
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return None if policy.loopback else "names this machine"
    if "." not in name and not policy.private:
        return (
            f"names the host {host!r} without a domain, which reaches the local network; "
            "use its full name on the internet"
        )
    return None


async def _addresses(host: str, port: int) -> list[str]:
    """What ``host`` resolves to now, through the machine's resolver."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in found]


async def resolved_problem(
    host: str,
    port: int,
    policy: NetworkPolicy,
    resolve: Callable[[str, int], Awaitable[list[str]]] = _addresses,
) -> str | None:
    """Why a webhook must not go to ``host`` as it resolves now, or None; a name that does
    not resolve is left to the request, which fails with its own error. ``resolve``: the
    lookup (the machine's resolver; tests give names addresses of their choosing)."""
    problem = host_problem(host, policy)
    if problem is not None:
        return problem
    try:
        ipaddress.ip_address(host)
        return None  # an address, checked above
    except ValueError:
        pass
    try:
        found = await resolve(host, port)
    except OSError:
        return None
    for text in found:
        address = ipaddress.ip_address(text)
        problem = address_problem(address, policy)
        if problem is not None:
            return f"{host} resolves to {address}, which {problem}"
    return None
