"""A lean HTTP/1.1 transport for the relying party's calls to identity providers.

Every sign-in callback makes one request to the provider's token endpoint (and sometimes
userinfo, discovery or the key set). Through httpx's default transport (httpcore, h11,
anyio) that request cost about 0.8 ms of CPU in this process, more than a fifth of a
whole callback; this transport keeps httpx's client (request building, auth, redirects,
proxies from the environment) and replaces the part that talks on the socket: an asyncio
protocol per connection, responses parsed by httptools (llhttp, the parser uvicorn uses),
idle connections kept for reuse like httpcore keeps them (at most ``max_idle`` per
origin, for ``keepalive_expiry`` seconds), and bodies decoded under the size bound
(``tenants.http_bodies``) before httpx sees them.

Errors are httpx's own (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``ReadError``, ``RemoteProtocolError``…), so callers translate them as before. A request
is never retried: a code sent to a token endpoint must not be sent twice.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any, cast

import httptools
import httpx

from tenants import http_bodies, network

#: Statuses whose responses never carry a body (RFC 9110 §6.4.1).
_NO_BODY = frozenset({204, 304})
#: The most an answer may hold, head and body, and the most its body may decode to:
#: discovery documents, key sets and token answers are a few kilobytes; a provider sending
#: more is refused before it fills memory (``tenants.http_bodies``).
MAX_RESPONSE_BYTES = 1 << 20


class _Connection(asyncio.Protocol):
    """One connection to an origin; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._response: _Response | None = None
        self._lost: BaseException | None = None

    # asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None:
            # Nothing was asked: the server is confused; never reuse this connection.
            self.close()
            return
        response.feed(data)

    def eof_received(self) -> bool | None:
        self._ended(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def _ended(self, exc: BaseException | None) -> None:
        self.closed = True
        if self._response is not None:
            self._response.ended(exc)

    # use -------------------------------------------------------------------------------

    def is_usable(self, now: float, expiry: float) -> bool:
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < expiry
        )

    async def exchange(
        self, head: bytes, body: bytes, *, head_only: bool, seconds: float | None
    ) -> _Response:
        """Send one request and wait at most ``seconds`` for its whole response."""
        assert self.transport is not None
        response = self._response = _Response(head_only=head_only)
        try:
            self.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.transport.write(body)
            async with asyncio.timeout(seconds):
                await response.done
        finally:
            self._response = None
        return response

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Response:
    """One response as it arrives, parsed by httptools."""

    def __init__(self, *, head_only: bool) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head_only = head_only
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.keep_alive = False
        self.complete = False
        #: No length and not chunked: the body lasts until the server closes.
        self.until_close = False
        self.started = False
        self.received = 0
        self._parser = httptools.HttpResponseParser(self)

    # httptools callbacks ---------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:
            # An interim response (100 Continue): the real one follows.
            self.headers = []
            self.reason = b""
            return
        names = {n.lower() for n, _ in self.headers}
        self.until_close = (
            b"content-length" not in names
            and b"transfer-encoding" not in names
            and self.status not in _NO_BODY
            and not self.head_only
        )
        if self.head_only:
            self._finish(keep_alive=False)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            return
        self._finish(keep_alive=self._parser.should_keep_alive() and not self.until_close)

    # from the connection ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.done.done():
            return
        self.started = True
        self.received += len(data)
        if self.received > MAX_RESPONSE_BYTES:
            self._fail(
                httpx.RemoteProtocolError(
                    f"the answer is larger than {MAX_RESPONSE_BYTES} bytes; refused"
                )
            )
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def ended(self, exc: BaseException | None) -> None:
        """The server closed the connection (``exc`` None) or it broke."""
        if self.done.done():
            return
        if self.until_close and self.status and exc is None:
            self._finish(keep_alive=False)
        elif exc is not None:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
        else:
            self._fail(
                httpx.RemoteProtocolError("the server closed the connection before answering")
            )

    def _finish(self, *, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        if not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class IdentityProviderTransport(httpx.AsyncBaseTransport):
    """httpx transport over plain asyncio connections, kept alive per origin."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
        resolve: network.Resolve = network.lookup,
    ) -> None:
        self._ssl = ssl_context
        #: How host names become addresses (the machine's resolver; tests give their own).
        self.resolve = resolve
        self.max_idle = max_idle
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, bytes, int], deque[_Connection]] = {}
        self._busy: set[_Connection] = set()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        port = url.port or (443 if scheme == b"https" else 80)
        origin = (scheme, url.raw_host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = self._head(request, body)
        head_only = request.method == "HEAD"
        connection = await self._connection(origin, timeouts.get("connect"))
        self._busy.add(connection)
        reusable = False
        try:
            try:
                response = await connection.exchange(
                    head, body, head_only=head_only, seconds=timeouts.get("read")
                )
            except TimeoutError as exc:
                raise httpx.ReadTimeout("the identity provider did not answer in time") from exc
            reusable = response.keep_alive
        finally:
            self._busy.discard(connection)
            if reusable and not connection.closed:
                self._release(origin, connection)
            else:
                connection.close()
        # Decoded here under the same bound: httpx would inflate a gzip bomb whole.
        headers, content = http_bodies.decoded(
            response.headers, b"".join(response.chunks), MAX_RESPONSE_BYTES
        )
        return httpx.Response(
            response.status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.strip()},
        )

    @staticmethod
    def _head(request: httpx.Request, body: bytes) -> bytes:
        lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
        has_length = False
        for name, value in http_bodies.with_accept_encoding(request.headers.raw):
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                continue  # the body is sent whole, with its length
            if lowered == b"content-length":
                has_length = True
            lines.append(name + b": " + value)
        if body and not has_length:
            lines.append(b"Content-Length: %d" % len(body))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _connection(
        self, origin: tuple[bytes, bytes, int], seconds: float | None
    ) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.is_usable(now, self.keepalive_expiry):
                return connection
            connection.close()
        scheme, host, port = origin
        hostname = host.decode("ascii")
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == b"https" else None
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(seconds):
                # Resolved once and checked against the network policy; the socket goes to
                # a checked address, TLS verifies the certificate against the name.
                for address in await network.allowed_addresses(
                    hostname, port, network.current(), self.resolve
                ):
                    try:
                        _, connection = await loop.create_connection(
                            _Connection,
                            address,
                            port,
                            ssl=tls,
                            server_hostname=hostname if tls is not None else None,
                        )
                        return connection
                    except OSError as exc:  # ssl.SSLError is one: the next address
                        failure = exc
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"cannot connect to {hostname}:{port} in time") from exc
        except network.Refused as exc:
            raise httpx.ConnectError(f"not connected to {hostname}: {exc}") from exc
        except (OSError, UnicodeError) as exc:
            # UnicodeError: a host name the resolver cannot encode (a label over 63
            # characters), e.g. one saved before the API refused them.
            failure = exc
        why = failure or "the name resolves to no address"
        raise httpx.ConnectError(f"cannot connect to {hostname}:{port}: {why}") from failure

    def _release(self, origin: tuple[bytes, bytes, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        connection.idle_since = time.monotonic()
        idle.append(connection)
        while len(idle) > self.max_idle:
            idle.popleft().close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        self._busy.clear()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<IdentityProviderTransport idle={sum(len(v) for v in self._idle.values())}>"


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class IdentityProviderClient(httpx.AsyncClient):
    """The relying party's client: keeps no cookies. One client serves every
    organisation's identity provider, and a multi-tenant provider's host serves many
    organisations: a cookie one sign-in received must not ride along on another
    organisation's requests. (Reading cookies off every answer also cost the token
    exchange ~50 µs of CPU for nothing.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the identity providers' client keeps no cookies")


def identity_provider_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for identity providers over ``IdentityProviderTransport``
    (proxies from the environment still go through httpx's own proxy transports); it
    keeps no cookies (``IdentityProviderClient``)."""
    return IdentityProviderClient(transport=IdentityProviderTransport(), **kwargs)
