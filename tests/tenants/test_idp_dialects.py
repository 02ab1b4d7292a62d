"""What identity providers really send, read as they mean it (pure rules of
``tenants.sso.oidc`` and ``tenants.sso.rules``): key sets with a member Tenantry cannot
use, the token endpoint's client authentication, Google's issuer and hosted domain, and
the shapes of groups claims."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from joserfc.jwk import ECKey, OKPKey

from tenants.signins.rules import Reason
from tenants.sso import oidc
from tenants.sso.rules import (
    GOOGLE_ISSUER,
    accepted_issuers,
    claimed_group_names,
    hosted_domain_problem,
)

URL = "https://idp.example/jwks"


def rsa(bits: int, kid: str) -> dict[str, object]:
    # By hand: joserfc will not make a key under 2048 bits without a warning.
    numbers = rsa_keys.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    n, e = numbers.public_numbers().n, numbers.public_numbers().e

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64(n), "e": b64(e)}


def test_a_key_set_keeps_its_usable_keys_and_leaves_out_the_rest() -> None:
    """RFC 7517 §5: one odd member (malformed, unknown kind, symmetric, too weak) once made
    the whole set invalid and stopped every sign-in."""
    good = rsa(2048, "good")
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec"}).as_dict(private=False)
    document = {
        "keys": [
            {**rsa(2048, "no-e"), "e": None},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {k: v for k, v in ec.items() if k != "y"} | {"kid": "ec-no-y"},
            {"kty": "AKP", "kid": "post-quantum", "alg": "ML-DSA-44", "pub": "AAAA"},
            {"kty": "oct", "kid": "shared", "k": base64.urlsafe_b64encode(b"k" * 32).decode()},
            rsa(1024, "weak"),
            {**rsa(2048, "for-encryption"), "use": "enc"},
            OKPKey.generate_key("X25519", parameters={"kid": "agreement"}).as_dict(private=False),
            "not a key",
            good,
            ec,
        ]
    }
    kept = oidc.usable_keys(document, URL)
    assert sorted(k.kid for k in kept.keys) == ["ec", "good"]


@pytest.mark.parametrize(
    "document", [{"keys": []}, {"keys": [rsa(1024, "weak")]}, {"keys": "x"}, [], None]
)
def test_a_key_set_with_nothing_usable_is_refused_saying_so(document: object) -> None:
    with pytest.raises(oidc.SignInError) as refused:
        oidc.usable_keys(document, URL)
    assert refused.value.reason is Reason.IDP_METADATA_INVALID
    assert URL in refused.value.message


@pytest.mark.parametrize(
    ("supported", "method"),
    [
        ((), "client_secret_basic"),  # Discovery §3: the default
        (("client_secret_basic", "client_secret_post"), "client_secret_basic"),
        (("client_secret_post", "private_key_jwt"), "client_secret_post"),
        (("private_key_jwt",), "client_secret_basic"),
    ],
)
def test_the_client_authenticates_as_the_provider_says_it_takes(
    supported: tuple[str, ...], method: str
) -> None:
    assert oidc.client_auth_method(supported) == method


def test_basic_credentials_are_form_encoded_first() -> None:
    """RFC 6749 §2.3.1: a secret with + / % : reached the provider raw and was refused."""
    auth = oidc.basic_credentials("tenantry client", "a+b/c%d:e~f")
    header = auth._auth_header  # what httpx sends
    decoded = base64.b64decode(header.split(" ", 1)[1]).decode()
    assert decoded == "tenantry%20client:a%2Bb%2Fc%25d%3Ae~f"


def test_discovery_reads_the_auth_methods_and_takes_an_empty_optional_endpoint_as_none() -> None:
    metadata = oidc.ProviderMetadata.from_document(
        "https://idp.example",
        {
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/a",
            "token_endpoint": "https://idp.example/t",
            "jwks_uri": URL,
            "userinfo_endpoint": "",
            "end_session_endpoint": "",
            "token_endpoint_auth_methods_supported": ["client_secret_post", 7],
        },
    )
    assert metadata.userinfo_endpoint is None and metadata.end_session_endpoint is None
    assert metadata.token_auth_methods == ("client_secret_post",)


def test_google_s_issuer_is_also_taken_without_its_scheme_and_no_other_is() -> None:
    assert accepted_issuers(GOOGLE_ISSUER) == {GOOGLE_ISSUER, "accounts.google.com"}
    assert accepted_issuers("https://tenant.auth0.example/") == {"https://tenant.auth0.example/"}
    assert accepted_issuers("https://idp.example") == {"https://idp.example"}


def test_a_google_account_signs_in_only_from_an_admitted_workspace() -> None:
    admitted = ["school.example", "staff.school.example"]
    assert hosted_domain_problem(GOOGLE_ISSUER, {"hd": "school.example"}, admitted) is None
    assert hosted_domain_problem(GOOGLE_ISSUER, {"hd": "Staff.School.example"}, admitted) is None
    consumer = hosted_domain_problem(GOOGLE_ISSUER, {"email": "a@school.example"}, admitted)
    assert consumer is not None and "no Google Workspace" in consumer
    other = hosted_domain_problem(GOOGLE_ISSUER, {"hd": "elsewhere.example"}, admitted)
    assert other is not None and "elsewhere.example" in other
    # Other providers send no hd and are not asked for one.
    assert hosted_domain_problem("https://login.example", {}, admitted) is None


@pytest.mark.parametrize(
    ("claim", "names"),
    [
        (["Staff", "Managers"], {"Staff", "Managers"}),
        ("Managers", {"Managers"}),  # ADFS: one group as a string
        (
            ["/Managers", "/Staff/Teachers/"],
            {"/Managers", "Managers", "/Staff/Teachers/", "Teachers"},
        ),
        ([7, None, "", "x" * 201, "ok"], {"ok"}),
        ({"_claim_names": "groups"}, set()),
        (None, set()),
    ],
)
def test_groups_claims_of_every_shape_give_the_names_they_mean(
    claim: object, names: set[str]
) -> None:
    assert claimed_group_names(claim, 200) == names


def test_a_groups_overage_is_said_for_the_admin_and_nothing_else_is() -> None:
    """Entra sends, for a person in over 200 groups, a pointer instead of the groups: the
    sign-in goes on without them, and the log says why no group was joined."""
    from tenants.sso.rules import groups_overage

    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "x"}}}
    said = groups_overage(overage, "groups")
    assert said is not None and "overage" in said and "'groups'" in said
    assert groups_overage({**overage, "groups": ["a"]}, "groups") is None
    assert groups_overage(overage, None) is None
    assert groups_overage({"_claim_names": {"roles": "src1"}}, "groups") is None
    assert groups_overage({"_claim_names": "groups"}, "groups") is None


@pytest.mark.parametrize("iss", [["https://idp.example"], {"nested": 1}, 7, None])
def test_an_issuer_claim_that_is_not_text_is_refused_not_a_crash(iss: object) -> None:
    """A list or an object as ``iss`` raised TypeError (unhashable) in the comparison: a
    500 on the callback and on back-channel logout, unlogged."""
    claims = {"iss": iss, "aud": "c", "iat": 1_700_000_000, "sub": "s"}
    with pytest.raises(oidc.SignInError) as refused:
        oidc._check_common(
            claims,
            issuer="https://idp.example",
            client_id="c",
            now=1_700_000_000,
            what="logout token",
        )
    assert refused.value.reason is Reason.LOGOUT_TOKEN_INVALID


def _metadata(end_session: str | None) -> oidc.ProviderMetadata:
    return oidc.ProviderMetadata(
        issuer="https://idp.example",
        authorization_endpoint="https://idp.example/a",
        token_endpoint="https://idp.example/t",
        jwks_uri=URL,
        end_session_endpoint=end_session,
    )


def test_signing_out_at_the_provider_names_the_client_the_way_back_and_the_hint() -> None:
    """RP-Initiated Logout 1.0 §2: the hint when kept, the client always (a provider needs
    one of them to accept the way back), the endpoint's own query kept (Entra's and
    Azure B2C's name their policy there)."""
    url = oidc.end_session_url(
        _metadata("https://idp.example/logout?p=b2c_1_signin"),
        client_id="tenantry app",
        post_logout_redirect_uri="https://tenantry.example/oidc/acme/signed-out",
        id_token_hint="eyJ.a.b",
    )
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "idp.example", "/logout")
    assert parse_qs(parts.query) == {
        "p": ["b2c_1_signin"],
        "client_id": ["tenantry app"],
        "post_logout_redirect_uri": ["https://tenantry.example/oidc/acme/signed-out"],
        "id_token_hint": ["eyJ.a.b"],
    }
    bare = oidc.end_session_url(
        _metadata("https://idp.example/logout"),
        client_id="c",
        post_logout_redirect_uri="https://t.example/back",
        id_token_hint=None,
    )
    assert bare == "https://idp.example/logout?client_id=c&post_logout_redirect_uri=https%3A%2F%2Ft.example%2Fback"


def test_a_provider_without_a_sign_out_endpoint_has_no_sign_out_address() -> None:
    """Google's discovery names no end_session_endpoint: the person is told instead."""
    assert (
        oidc.end_session_url(
            _metadata(None), client_id="c", post_logout_redirect_uri="https://t/b", id_token_hint="x"
        )
        is None
    )
