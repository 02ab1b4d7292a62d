"""The relying party's HTTP transport against real sockets: what it sends, how it reads
each way a server may frame a response, when it keeps a connection, and which httpx
errors callers see when a provider misbehaves."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from app.idp_http import IdentityProviderClient, IdentityProviderTransport, identity_provider_client
from tenants import network


@dataclass
class Seen:
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


Answer = Callable[[bytes], bytes | None]


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, Seen]]:
    """A server on 127.0.0.1 that answers each request (head and body, by Content-Length)
    with ``answer(request)`` written raw, or closes the connection when it gives None."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                seen.requests.append(request)
                reply = answer(request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        listening.close()


def ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))


async def test_a_post_carries_its_headers_and_body_and_the_connection_is_kept() -> None:
    async with server(lambda _: ok(b'{"id_token": "t"}')) as (url, seen), \
            identity_provider_client(headers={"User-Agent": "Tenantry/test"}) as client:
        first = await client.post(f"{url}/token?x=1", data={"code": "abc"},
                                  auth=httpx.BasicAuth("client", "secret"))
        second = await client.get(f"{url}/userinfo")
    assert first.status_code == 200 and first.json() == {"id_token": "t"}
    assert second.json() == {"id_token": "t"}
    request = seen.requests[0]
    assert request.startswith(b"POST /token?x=1 HTTP/1.1\r\n")
    assert b"\r\nUser-Agent: Tenantry/test\r\n" in request
    assert b"\r\nAuthorization: Basic " in request
    assert b"\r\nContent-Length: 8\r\n" in request
    assert request.endswith(b"\r\n\r\ncode=abc")
    assert seen.connections == 1


async def test_chunked_and_gzip_bodies_are_read_whole() -> None:
    packed = gzip.compress(b'{"keys": []}')
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:5], packed[5:]))
               + b"0\r\n\r\n")
    async with server(lambda _: chunked) as (url, seen), identity_provider_client() as client:
        first = await client.get(f"{url}/jwks")
        second = await client.get(f"{url}/jwks")
    assert first.json() == {"keys": []} and second.json() == {"keys": []}
    assert seen.connections == 1


async def test_a_body_that_lasts_until_the_server_closes_is_read_and_the_connection_dropped() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}"
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        async with identity_provider_client() as client:
            responses = [await client.get(f"http://127.0.0.1:{port}/") for _ in range(2)]
    finally:
        listening.close()
    assert [r.json() for r in responses] == [{"a": 1}, {"a": 1}]


async def test_connection_close_and_204_are_honoured() -> None:
    replies = iter([b"HTTP/1.1 204 No Content\r\n\r\n",
                    ok(b"{}", b"Connection: close"),
                    ok(b"[]")])
    async with server(lambda _: next(replies)) as (url, seen), identity_provider_client() as client:
        empty = await client.get(f"{url}/a")
        closing = await client.get(f"{url}/b")
        after = await client.get(f"{url}/c")
    assert empty.status_code == 204 and empty.content == b""
    assert closing.json() == {} and after.json() == []
    assert seen.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ok(b"{}"))  # keep-alive offered, then the server's idle timeout
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        async with identity_provider_client() as client:
            await client.get(f"http://127.0.0.1:{port}/a")
            await asyncio.sleep(0.05)
            second = await client.get(f"http://127.0.0.1:{port}/b")
    finally:
        listening.close()
    assert second.json() == {}
    assert connections == 2


async def test_idle_connections_expire() -> None:
    transport = IdentityProviderTransport(keepalive_expiry=0.05)
    async with server(lambda _: ok(b"{}")) as (url, seen), \
            httpx.AsyncClient(transport=transport) as client:
        await client.get(f"{url}/a")
        await asyncio.sleep(0.1)
        await client.get(f"{url}/b")
    assert seen.connections == 2


async def test_a_server_that_hangs_up_without_answering_is_a_protocol_error() -> None:
    async with server(lambda _: None) as (url, _seen), identity_provider_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{url}/token", data={"code": "x"})


async def test_a_malformed_answer_is_a_protocol_error() -> None:
    async with server(lambda _: b"NOT HTTP AT ALL\r\n\r\n") as (url, _seen), \
            identity_provider_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{url}/")


async def test_an_answer_larger_than_the_limit_is_refused_and_its_connection_dropped() -> None:
    from app.idp_http import MAX_RESPONSE_BYTES

    whole = b"x" * (MAX_RESPONSE_BYTES - 200)
    huge = b"x" * (MAX_RESPONSE_BYTES + 1)
    answers = iter([ok(whole), ok(huge), ok(b"{}")])
    async with server(lambda _: next(answers)) as (url, seen), \
            identity_provider_client() as client:
        assert len((await client.get(f"{url}/keys")).content) == len(whole)
        with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
            await client.get(f"{url}/keys")
        # The refused answer's connection is not reused: the next request opens another.
        assert (await client.get(f"{url}/keys")).json() == {}
        assert seen.connections == 2


async def test_a_compressed_answer_is_bounded_as_it_decodes_and_none_is_asked_for() -> None:
    """``Content-Encoding: gzip, gzip`` on a few hundred bytes would decode to 100 MB in
    httpx's hands, on the event loop; here it is refused once past the bound, and an honest
    gzipped answer still reads."""
    bomb = gzip.compress(gzip.compress(b"\0" * (100 << 20), compresslevel=9), compresslevel=9)
    assert len(bomb) < 2_000
    answers = iter([
        ok(bomb, b"Content-Encoding: gzip, gzip"),
        ok(gzip.compress(b'{"keys": []}'), b"Content-Encoding: gzip"),
    ])
    async with server(lambda _: next(answers)) as (url, seen), \
            identity_provider_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
            await client.get(f"{url}/jwks")
        honest = await client.get(f"{url}/jwks")
    assert honest.json() == {"keys": []}
    assert "content-encoding" not in honest.headers
    assert all(b"\r\nAccept-Encoding: identity\r\n" in r for r in seen.requests)


async def test_a_slow_answer_is_a_read_timeout() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1)
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        async with identity_provider_client(timeout=httpx.Timeout(0.1)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/")
            # The timed-out connection is not handed to the next request.
            assert not client._transport._idle.get((b"http", b"127.0.0.1", port))  # type: ignore[attr-defined]
    finally:
        listening.close()


async def test_nobody_listening_is_a_connect_error() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    async with identity_provider_client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_host_name_the_resolver_cannot_encode_is_a_connect_error() -> None:
    """A label over 63 characters fails in the resolver's IDNA codec (a UnicodeError), which
    reached the sign-in test as a 500; it is a host that cannot be reached."""
    async with identity_provider_client() as client:
        with pytest.raises(httpx.ConnectError, match="cannot connect"):
            await client.get(f"https://{'a' * 64}.example.org/.well-known/openid-configuration")


async def test_other_schemes_are_refused() -> None:
    async with identity_provider_client() as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/")


async def test_cookies_an_identity_provider_sets_are_not_sent_back() -> None:
    async with server(lambda _: ok(b"{}", b"Set-Cookie: sid=org-a; Path=/")) as (url, seen), \
            identity_provider_client() as client:
        await client.get(f"{url}/token")
        await client.get(f"{url}/token")
    assert all(b"cookie:" not in r.lower() for r in seen.requests)
    assert len(client.cookies) == 0


async def test_connections_go_only_where_the_network_policy_allows_to_the_address_checked() -> None:
    """A provider's address is resolved once per connection and checked (an admin types
    the issuer, and its discovery document names the other endpoints): the socket goes to
    the checked address, so a name cannot pass the check with one address and connect to
    another; private and (in production) loopback addresses are refused before connecting."""
    asked: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return {"idp.example": ["127.0.0.1"], "intranet-idp.example": ["10.0.0.7"]}[host]

    before = network.current()
    try:
        async with server(lambda _: ok(b'{"ok": true}')) as (url, seen):
            port = httpx.URL(url).port
            async with IdentityProviderClient(transport=IdentityProviderTransport(resolve=dns)) as client:
                answer = await client.get(f"http://idp.example:{port}/jwks")
                assert answer.json() == {"ok": True}
                assert b"\r\nHost: idp.example:%d\r\n" % port in seen.requests[0]
                with pytest.raises(httpx.ConnectError, match=r"intranet-idp\.example resolves "
                                   r"to 10\.0\.0\.7, which is on a private network"):
                    await client.get(f"https://intranet-idp.example:{port}/jwks")
                network.configure(network.NetworkPolicy(loopback=False, private=False))
                with pytest.raises(httpx.ConnectError, match="this machine's own"):
                    await client.get(f"https://idp.example:{port}/jwks")  # a new origin
                with pytest.raises(httpx.ConnectError, match=r"names 127\.0\.0\.1, which is this"):
                    await client.get(f"{url}/token")
    finally:
        network.configure(before)
    assert asked == ["idp.example", "intranet-idp.example", "idp.example"]
    assert len(seen.requests) == 1
