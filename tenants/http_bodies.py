"""Answers from servers an organisation names (its identity provider, its Keycloak, its
products' webhooks), read with a bound on what they decode to, not only on what arrives.

A bound on the bytes received is not enough: a 700-byte answer marked
``Content-Encoding: gzip, gzip`` decodes to 300 MB, and httpx's decoders build all of it in
memory, on the event loop every organisation's requests share. So the transports that talk
to such servers ask for no encoding, decode whatever comes anyway here, layer by layer and
each layer capped, and hand httpx the decoded body without its ``Content-Encoding``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import httpx

#: The encodings decoded (RFC 9110 §8.4.1; ``x-gzip`` is gzip): zlib's window bits for each.
_WINDOW_BITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}

#: What the transports ask for: the answers are small, so compression saves little, and
#: a server that compresses anyway is decoded under the same bound.
ACCEPT_ENCODING = "identity"

Headers = list[tuple[bytes, bytes]]


def too_large(limit: int) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"the answer is larger than {limit} bytes; refused")


def content_codings(headers: Headers) -> list[str]:
    """The answer's content codings, in the order they were applied (``identity`` left out)."""
    codings = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for part in value.decode("latin-1").split(","):
                coding = part.strip().lower()
                if coding and coding != "identity":
                    codings.append(coding)
    return codings


def decoded(headers: Headers, body: bytes, limit: int) -> tuple[Headers, bytes]:
    """``(headers, body)`` with every content coding undone, the last applied first, none
    of them growing past ``limit`` bytes; the headers then say nothing of the coding and
    give the decoded length. httpx.RemoteProtocolError when the body would outgrow the
    bound, httpx.DecodingError when it is not what its coding says or the coding is one
    not decoded here (br, zstd, compress)."""
    codings = content_codings(headers)
    if not codings:
        return headers, body
    for coding in reversed(codings):
        bits = _WINDOW_BITS.get(coding)
        if bits is None:
            raise httpx.DecodingError(f"the answer is encoded as {coding!r}, which is not read")
        body = _inflate(body, bits, limit, coding)
    kept = [(n, v) for n, v in headers if n.lower() not in (b"content-encoding", b"content-length")]
    return [*kept, (b"Content-Length", str(len(body)).encode())], body


#: Gzip members one answer may hold. Each further member costs a copy of what follows it,
#: so thousands of empty members in a megabyte would hold the event loop for seconds;
#: a server sends one, and a concatenation of a few is already rare.
MAX_MEMBERS = 16


def _inflate(data: bytes, bits: int, limit: int, coding: str) -> bytes:
    """One layer undone, at most ``limit`` bytes of it; gzip members one after another (RFC
    1952 §2.2) are read as one body, as httpx reads them, up to MAX_MEMBERS."""
    out = bytearray()
    members = 0
    while data:
        members += 1
        if members > MAX_MEMBERS:
            raise httpx.DecodingError(
                f"the answer holds more than {MAX_MEMBERS} {coding} members; refused"
            )
        inflater = zlib.decompressobj(bits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            if bits == 15 and not out:  # "deflate" sent raw, without the zlib wrapper
                return _inflate(data, -15, limit, coding)
            raise httpx.DecodingError(f"the answer is not valid {coding}: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large(limit)
        if not inflater.eof:
            raise httpx.DecodingError(f"the answer's {coding} data ends early")
        data = inflater.unused_data
    return bytes(out)


def with_accept_encoding(raw: Sequence[tuple[bytes, bytes]]) -> Headers:
    """Request headers asking for an unencoded answer (httpx asks for gzip and more)."""
    kept = [(n, v) for n, v in raw if n.lower() != b"accept-encoding"]
    return [*kept, (b"Accept-Encoding", ACCEPT_ENCODING.encode())]
