"""A provider's discovery document is read as hostile input: every endpoint Tenantry calls
or sends a browser to must be an https URL (http on this machine only), and anything else
refuses the sign-in with the field named, before a secret, a code or a person goes there."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tenants.signins.rules import Reason
from tenants.sso.oidc import OPTIONAL_ENDPOINTS, REQUIRED_ENDPOINTS, ProviderMetadata, SignInError

ISSUER = "https://idp.example.com"


def document(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "end_session_endpoint": f"{ISSUER}/logout",
    }
    for key, value in changes.items():
        if value is ...:
            del found[key]
        else:
            found[key] = value
    return found


def test_a_well_formed_document_gives_its_endpoints() -> None:
    metadata = ProviderMetadata.from_document(ISSUER, document())
    assert metadata.token_endpoint == f"{ISSUER}/token"
    assert metadata.jwks_uri == f"{ISSUER}/jwks"
    assert metadata.end_session_endpoint == f"{ISSUER}/logout"
    # Optional endpoints may be missing (or null); required ones on another host are fine.
    other = ProviderMetadata.from_document(
        ISSUER,
        document(
            userinfo_endpoint=...,
            end_session_endpoint=None,
            token_endpoint="https://login.example.net:8443/oauth2/token?tenant=a",
        ),
    )
    assert (other.userinfo_endpoint, other.end_session_endpoint) == (None, None)
    assert other.token_endpoint == "https://login.example.net:8443/oauth2/token?tenant=a"
    # A provider beside a development server may speak plain http on this machine.
    local = "http://127.0.0.1:9000"
    assert (
        ProviderMetadata.from_document(
            local, {**document(), "issuer": local, "jwks_uri": f"{local}/jwks"}
        ).jwks_uri
        == f"{local}/jwks"
    )


HOSTILE: list[tuple[Any, str]] = [
    ("file:///etc/passwd", "names no host"),
    ("javascript:alert(1)", "names no host"),
    ("http://idp.example.com/x", "must use https:// (http:// only for localhost"),
    ("gopher://idp.example.com/", "must use https://"),
    ("https://idp.example.com/x\r\nSet-Cookie: a=b", "contains whitespace or control"),
    ("https://idp.example.com/" + "a" * 2000, "is longer than 2000 characters"),
    ("https://user:pw@idp.example.com/token", "must not carry a user name or password"),
    ("https://idp.example.com/token#x", "must not have a #fragment"),
    ("https://idp.example.com:99999/token", "is not a URL"),
    ("/token", "names no host"),
    (42, "is not a URL"),
    (["https://idp.example.com/token"], "is not a URL"),
    ({"url": "https://idp.example.com/token"}, "is not a URL"),
    (True, "is not a URL"),
]


@pytest.mark.parametrize("key", [*REQUIRED_ENDPOINTS, *OPTIONAL_ENDPOINTS])
@pytest.mark.parametrize(("value", "reason"), HOSTILE, ids=lambda v: repr(v)[:30])
def test_every_endpoint_that_is_not_an_https_url_refuses_the_sign_in_naming_it(
    key: str, value: Any, reason: str
) -> None:
    with pytest.raises(SignInError) as refused:
        ProviderMetadata.from_document(ISSUER, document(**{key: value}))
    assert refused.value.reason is Reason.IDP_METADATA_INVALID
    assert str(refused.value).startswith(f"the discovery document's {key} "), refused.value
    assert reason in str(refused.value)


@pytest.mark.parametrize("key", REQUIRED_ENDPOINTS)
@pytest.mark.parametrize("value", [..., None, ""], ids=["absent", "null", "empty"])
def test_a_required_endpoint_missing_is_named(key: str, value: Any) -> None:
    with pytest.raises(SignInError, match=f"the discovery document lacks {key}$") as refused:
        ProviderMetadata.from_document(ISSUER, document(**{key: value}))
    assert refused.value.reason is Reason.IDP_METADATA_INVALID


def test_an_issuer_other_than_the_one_asked_for_is_refused_first() -> None:
    with pytest.raises(SignInError, match=re.escape("names issuer 'https://evil.example'")):
        ProviderMetadata.from_document(
            ISSUER, document(issuer="https://evil.example", token_endpoint="file:///x")
        )
