"""What an identity provider's claims and token headers are taken to say: the pure rules
behind the sign-in's refusals, called without a provider."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tenants.sso.oidc import MAX_IDENTIFIER, identifier_problem, jws_header, kid_of
from tenants.sso.rules import email_vouched_for


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (True, True),
        ("true", True),
        (" True ", True),
        (False, False),
        ("false", False),
        ("FALSE", False),
        ("yes", False),  # only a yes is a yes
        (1, False),
        ("", False),
        ({"value": True}, False),
    ],
)
def test_email_verified_is_a_yes_only_when_it_says_true(value: Any, said: bool) -> None:
    assert email_vouched_for({"email_verified": value}) is said


def test_a_provider_that_says_nothing_of_verification_is_told_apart_from_a_no() -> None:
    assert email_vouched_for({"email": "a@b.example"}) is None
    assert email_vouched_for({"email_verified": None}) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("s" * (MAX_IDENTIFIER + 1), f"is longer than {MAX_IDENTIFIER} characters"),
        ("a\nb", "contains a control character"),
        ("a\x7fb", "contains a control character"),
    ],
)
def test_identifiers_that_cannot_name_one_identity(value: str, problem: str) -> None:
    assert identifier_problem(value) == problem


@pytest.mark.parametrize("value", ["x", "s" * MAX_IDENTIFIER, "248289761001", "Ünïcødé|id"])
def test_identifiers_a_provider_may_send(value: str) -> None:
    assert identifier_problem(value) is None


def _token(header: bytes) -> str:
    return base64.urlsafe_b64encode(header).rstrip(b"=").decode() + ".e30.sig"


@pytest.mark.parametrize(
    "header", [b'["x"]', b"5", b'"kid"', b"null", b"[" * 50_000, b"\xff\xfe", b"{not json"]
)
def test_a_header_that_is_no_json_object_has_no_kid_and_no_header(header: bytes) -> None:
    assert jws_header(_token(header)) is None
    assert kid_of(_token(header)) is None


def test_a_header_object_gives_its_kid_when_it_is_text() -> None:
    assert kid_of(_token(b'{"alg": "RS256", "kid": "k1"}')) == "k1"
    assert kid_of(_token(b'{"alg": "RS256", "kid": 7}')) is None
    assert jws_header(_token(b'{"alg": "RS256"}')) == {"alg": "RS256"}
