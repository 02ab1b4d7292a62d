"""Answers decoded under a bound: what a compressed answer may grow to, layer by layer, and
that an honest answer in any coding httpx would have read comes out the same."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from tenants.http_bodies import content_codings, decoded, with_accept_encoding

LIMIT = 1 << 20


def bomb(size: int) -> bytes:
    """``size`` zero bytes gzipped: about a thousandth of that on the wire."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def headers(*codings: str) -> list[tuple[bytes, bytes]]:
    return [(b"Content-Type", b"application/json"), (b"Content-Length", b"999")] + [
        (b"Content-Encoding", c.encode()) for c in codings
    ]


def test_an_unencoded_answer_is_handed_on_as_it_came() -> None:
    given = headers("identity")
    assert decoded(given, b'{"a": 1}', LIMIT) == (given, b'{"a": 1}')


@pytest.mark.parametrize(
    ("codings", "encode"),
    [
        (("gzip",), gzip.compress),
        (("x-gzip",), gzip.compress),
        (("deflate",), zlib.compress),
        (("deflate",), lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        (("gzip", "gzip"), lambda b: gzip.compress(gzip.compress(b))),
        (("deflate", "gzip"), lambda b: gzip.compress(zlib.compress(b))),
    ],
)
def test_each_coding_is_undone_last_applied_first(codings: tuple[str, ...], encode: object) -> None:
    body = b'{"keys": [' + b'{"kty": "RSA"},' * 50 + b"{}]}"
    out_headers, out = decoded(headers(*codings), encode(body), LIMIT)  # type: ignore[operator]
    assert out == body
    names = {n.lower() for n, _ in out_headers}
    assert b"content-encoding" not in names
    assert (b"Content-Length", str(len(body)).encode()) in out_headers
    assert (b"Content-Type", b"application/json") in out_headers


def test_codings_listed_in_one_header_count_as_if_in_several() -> None:
    body = b"{}"
    assert decoded(headers("gzip, GZIP"), gzip.compress(gzip.compress(body)), LIMIT)[1] == body
    assert content_codings(headers("gzip, identity", "deflate")) == ["gzip", "deflate"]


def test_gzip_members_one_after_another_are_one_body() -> None:
    assert (
        decoded(headers("gzip"), gzip.compress(b"ab") + gzip.compress(b"cd"), LIMIT)[1] == b"abcd"
    )


def test_a_body_decoding_to_more_than_the_bound_is_refused() -> None:
    small = bomb(100 << 20)
    assert len(small) < 400_000
    with pytest.raises(httpx.RemoteProtocolError, match="larger than 1048576 bytes"):
        decoded(headers("gzip"), small, LIMIT)
    # Exactly the bound passes, one byte more does not.
    assert len(decoded(headers("gzip"), bomb(LIMIT), LIMIT)[1]) == LIMIT
    with pytest.raises(httpx.RemoteProtocolError):
        decoded(headers("gzip"), bomb(LIMIT + 1), LIMIT)


def test_each_layer_of_a_nested_bomb_is_bounded() -> None:
    """``gzip, gzip``: the outer layer is small, the inner one is what grows."""
    nested = gzip.compress(bomb(100 << 20), compresslevel=9)
    assert len(nested) < 10_000
    with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
        decoded(headers("gzip", "gzip"), nested, LIMIT)


def test_a_second_member_cannot_grow_the_body_past_the_bound() -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        decoded(headers("gzip"), bomb(LIMIT - 10) + bomb(20), LIMIT)


@pytest.mark.parametrize(
    ("codings", "body", "message"),
    [
        (("br",), b"\x0b\x02\x80{}\x03", "encoded as 'br'"),
        (("zstd",), b"x", "encoded as 'zstd'"),
        (("gzip",), b"not gzip at all", "not valid gzip"),
        (("gzip",), gzip.compress(b"x" * 1000, mtime=0)[:-12], "ends early"),
    ],
)
def test_what_cannot_be_read_is_a_decoding_error(
    codings: tuple[str, ...], body: bytes, message: str
) -> None:
    with pytest.raises(httpx.DecodingError, match=message):
        decoded(headers(*codings), body, LIMIT)


def test_the_request_asks_for_no_coding() -> None:
    asked = with_accept_encoding([(b"Accept-Encoding", b"gzip, deflate, br"), (b"Host", b"x")])
    assert asked == [(b"Host", b"x"), (b"Accept-Encoding", b"identity")]


def test_many_members_are_refused_before_they_cost_more_than_a_few() -> None:
    """Thousands of empty gzip members in a megabyte cost a copy of the rest of the body
    each: refused past MAX_MEMBERS, a handful still read."""
    from tenants.http_bodies import MAX_MEMBERS

    empty = gzip.compress(b"", 0)
    with pytest.raises(httpx.DecodingError, match=f"more than {MAX_MEMBERS} gzip members"):
        decoded(headers("gzip"), empty * 45_000, LIMIT)
    assert decoded(headers("gzip"), gzip.compress(b"x") * MAX_MEMBERS, LIMIT)[1] == b"x" * MAX_MEMBERS
