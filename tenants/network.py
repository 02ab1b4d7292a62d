"""Which networks the service's outbound requests may reach: it must not be a way into
its own.

Admins type addresses the service then calls from inside the operator's network: a
product's webhook, an identity provider's issuer (and the endpoints its discovery
document names), the Keycloak server members are mirrored into (which is sent the
client secret). Unchecked, ``https://10.0.0.5/`` or ``https://intranet/`` would have the
service probe and post to machines no tenant should reach (SSRF). So by default an address
must be on the internet: private, shared, reserved and link-local addresses are refused,
and so are one-label names (``intranet``), which resolve through the machine's search
domains. The machine itself (loopback) is allowed outside production, for a developer's
receiver or provider and the tests. An operator whose products or identity providers live
on a private network allows it with ``TENANTRY_PRIVATE_NETWORKS=true``.

The check runs when a webhook address is saved (on the text), and whenever a connection
opens, inside the connection itself (``PolicedTransport`` for webhooks and the Keycloak
adapter, the identity providers' transport in ``app.idp_http``): the name is resolved once, every address it
gives is checked, and the socket goes to a checked address while TLS still verifies the
certificate against the name. So a name pointed at a private address later is refused,
and so is one that answers the check with a public address and the connection with a
private one (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from tenants import http_bodies

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The most an answer to a policed request may hold, as sent and as decoded: Keycloak's
#: admin answers the adapter reads are a few pages of users or groups; a webhook's answer
#: is read for its status alone.
MAX_RESPONSE_BYTES = 8 << 20


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
    """Why a request must not go to ``address`` (words that follow "which"), or None.
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
            "is on a private network (Tenantry reaches private networks only when the "
            "operator allows them)"
        )
    return None


def host_problem(host: str, policy: NetworkPolicy) -> str | None:
    """Why a request must not go to ``host`` as written (an address, or a name), or None.
    Pure: a name's addresses are checked when it is resolved (``allowed_addresses``)."""
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


async def lookup(host: str, port: int) -> list[str]:
    """What ``host`` resolves to now, through the machine's resolver."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in found]


Resolve = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """A connection the policy does not allow; the message says why, in words that can
    follow "not sent: "."""


async def allowed_addresses(
    host: str, port: int, policy: NetworkPolicy, resolve: Resolve = lookup
) -> list[str]:
    """The addresses to connect to for ``host``, each one the policy allows; ``Refused``
    when the host as written, or any address it resolves to, is not allowed (one private
    address among public ones is enough: which one a connection takes is not ours to
    choose). OSError when the name does not resolve. ``resolve``: the lookup (the
    machine's resolver; tests give names addresses of their choosing)."""
    problem = host_problem(host, policy)
    if problem is not None:
        raise Refused(problem)
    try:
        return [str(ipaddress.ip_address(host))]  # an address, checked above
    except ValueError:
        pass
    found = await resolve(host, port)
    for text in found:
        address = ipaddress.ip_address(text)
        problem = address_problem(address, policy)
        if problem is not None:
            raise Refused(f"{host} resolves to {address}, which {problem}")
    return list(dict.fromkeys(found))


class _PolicedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but a TCP connection goes only to addresses
    ``allowed_addresses`` gave for the name (tried in order), under the process's policy
    as it is at that moment."""

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's signature
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await allowed_addresses(host, port, current(), self._resolve)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failed: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
        raise failed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's signature
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("requests are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PolicedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (connection pool, HTTP/1.1, TLS against the URL's host name) whose
    connections obey the network policy at connect time (``_PolicedBackend``).
    ``Refused`` comes out of a request as it is, not as an httpx error. ``verify``: as
    httpx's (false only where an operator asked for it, e.g. a test Keycloak's own
    certificate)."""

    def __init__(
        self,
        resolve: Resolve = lookup,
        *,
        verify: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__()
        self.max_response_bytes = max_response_bytes
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            # httpx's own client defaults (``httpx.Limits()`` alone bounds nothing).
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PolicedBackend(resolve),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The answer read whole, at most ``max_response_bytes`` as it arrives and as it
        decodes (``tenants.http_bodies``): a server an organisation names must not be able
        to fill this process's memory, with a large answer or a small compressed one."""
        request.headers = httpx.Headers(http_bodies.with_accept_encoding(request.headers.raw))
        response = await super().handle_async_request(request)
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                size += len(chunk)
                if size > limit:
                    raise http_bodies.too_large(limit)
                chunks.append(chunk)
        finally:
            await response.aclose()
        headers, body = http_bodies.decoded(response.headers.raw, b"".join(chunks), limit)
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )
