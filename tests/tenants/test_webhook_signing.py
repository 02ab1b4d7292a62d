"""Webhook signatures (Standard Webhooks), the addresses webhooks may go to, and which
secrets sign during a rotation; all without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.settings import Settings, SettingsError
from tenants.network import NetworkPolicy, Refused, Resolve, allowed_addresses
from tenants.webhooks.rules import check_webhook_url, rotation_problem, secrets_in_use
from tenants.webhooks.signing import (
    WebhookVerificationError,
    generate_secret,
    sign,
    signature,
    verify,
)

NOW = 1_700_000_000
BODY = b'{"id":"evt-1","type":"policy.changed","data":{}}'


def test_the_signature_is_the_standard_webhooks_hmac_over_id_timestamp_and_body() -> None:
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, timestamp = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    body = b'{"test": 2432232314}'
    assert signature(secret, msg_id, timestamp, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    assert signature(secret, msg_id, timestamp, body) == "v1," + base64.b64encode(expected).decode()


def test_a_signed_request_verifies_with_its_secret_and_returns_its_id() -> None:
    secret = generate_secret()
    headers = sign([secret], "evt-1", NOW, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert verify(secret, headers, BODY, now=NOW + 10) == "evt-1"
    shouting = {k.upper(): v for k, v in headers.items()}
    assert verify(secret, shouting, BODY, now=NOW) == "evt-1"


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = generate_secret(), generate_secret()
    headers = sign([new, old], "evt-2", NOW, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(new, headers, BODY, now=NOW) == "evt-2"
    assert verify(old, headers, BODY, now=NOW) == "evt-2"
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify(generate_secret(), headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: (h, b + b" "), "no signature"),
        (lambda h, b: ({**h, "webhook-id": "evt-other"}, b), "no signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), "no signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "unix seconds"),
        (
            lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
            "no signature",
        ),
    ],
)
def test_a_tampered_request_is_refused(change: object, message: str) -> None:
    secret = generate_secret()
    headers, body = change(sign([secret], "evt-3", NOW, BODY), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=message):
        verify(secret, headers, body, now=NOW)


def test_an_old_or_future_timestamp_is_refused_outside_the_tolerance() -> None:
    secret = generate_secret()
    headers = sign([secret], "evt-4", NOW, BODY)
    verify(secret, headers, BODY, now=NOW + 300)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(WebhookVerificationError, match="window"):
            verify(secret, headers, BODY, now=now)
    assert verify(secret, headers, BODY, now=NOW + 3000, tolerance=3600) == "evt-4"


def test_signing_needs_a_secret_and_secrets_are_random() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        sign([], "evt", NOW, BODY)
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(base64.b64decode(s[6:])) == 32 for s in secrets)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.text(min_size=1, max_size=100).filter(str.strip))
def test_any_body_and_id_round_trip_through_sign_and_verify(body: bytes, msg_id: str) -> None:
    msg_id = "".join(msg_id.split())
    secret = generate_secret()
    assert verify(secret, sign([secret], msg_id, NOW, body), body, now=NOW) == msg_id


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tenantry",
        "https://hooks.example.com:8443/in?team=7",
        "http://127.0.0.1:9999/hook",
        "http://localhost/hook",
        "http://[::1]:8080/",
    ],
)
def test_https_addresses_and_plain_http_on_this_machine_are_accepted(url: str) -> None:
    assert check_webhook_url(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/", "must use https://"),
        ("ftp://hooks.example.com/", "must use https://"),
        ("https:///nohost", "names no host"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://169.254.169.254/latest/meta-data", "not a web server"),
        ("https://hooks.example.com:99999/", "is not a URL"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://h.example/" + "x" * 2000, "longer than"),
    ],
)
def test_other_addresses_are_refused_with_a_reason(url: str, reason: str) -> None:
    found = check_webhook_url(url)
    assert found is not None and reason in found, found


def test_the_previous_secret_signs_only_until_its_grace_period_ends() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = now + timedelta(hours=24)
    assert secrets_in_use("new", "old", later, now) == ["new", "old"]
    assert secrets_in_use("new", "old", later, later) == ["new"]
    assert secrets_in_use("new", None, None, now) == ["new"]
    assert secrets_in_use(None, None, None, now) == []


def test_a_product_verifying_with_the_standardwebhooks_library_accepts_each_secret_in_use() -> None:
    from standardwebhooks import Webhook
    from standardwebhooks import WebhookVerificationError as LibraryError

    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    headers = sign([new, old], "evt-lib", now, b'{"type": "policy.changed"}')
    for secret in (new, old):
        assert Webhook(secret).verify(b'{"type": "policy.changed"}', headers) == {
            "type": "policy.changed"
        }
    with pytest.raises(LibraryError):
        Webhook(generate_secret()).verify(b'{"type": "policy.changed"}', headers)
    with pytest.raises(LibraryError):
        Webhook(new).verify(b'{"type": "policy.changed "}', headers)


def test_the_console_rotates_a_secret_only_while_webhooks_are_on() -> None:
    assert rotation_problem("https://hooks.example.com/in", has_secret=True) is None
    assert "turn them on" in (rotation_problem(None, has_secret=True) or "")
    assert "no signing secret yet" in (rotation_problem(None, has_secret=False) or "")


# --- which networks a webhook may reach (tenants.network) ---------------------------

INTERNET_ONLY = NetworkPolicy(loopback=False, private=False)
DEVELOPMENT = NetworkPolicy()  # this machine allowed, private networks not
PRIVATE_ALLOWED = NetworkPolicy(loopback=False, private=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.5/hook", "names 10.0.0.5, which is on a private network"),
        ("https://192.168.1.20/hook", "is on a private network"),
        ("https://172.16.0.1/hook", "is on a private network"),
        ("https://100.64.0.1/hook", "is on a private network"),  # shared (CGNAT)
        ("https://[fd00::1]/hook", "is on a private network"),  # unique local
        ("https://[::ffff:10.0.0.5]/hook", "names 10.0.0.5, which is on a private network"),
        ("https://intranet/hook", "names the host 'intranet' without a domain"),
        ("https://169.254.169.254/", "is not a web server's address"),
        ("https://[fe80::1]/", "is not a web server's address"),
    ],
)
def test_private_networks_are_refused_unless_the_operator_allows_them(
    url: str, reason: str
) -> None:
    found = check_webhook_url(url, DEVELOPMENT)
    assert found is not None and reason in found, found
    if "web server" not in reason:
        assert check_webhook_url(url, PRIVATE_ALLOWED) is None
    else:  # metadata services and link-local addresses, whatever the operator allows
        assert check_webhook_url(url, PRIVATE_ALLOWED) is not None


def test_this_machine_is_reachable_outside_production_only() -> None:
    for url in ("http://127.0.0.1:9999/hook", "http://localhost/hook", "http://[::1]:8080/"):
        assert check_webhook_url(url, DEVELOPMENT) is None
        found = check_webhook_url(url, INTERNET_ONLY)
        assert found is not None and "this machine" in found, found
    assert check_webhook_url("https://hooks.example.com/in", INTERNET_ONLY) is None
    assert check_webhook_url("https://8.8.8.8/in", INTERNET_ONLY) is None


async def refusal(host: str, policy: NetworkPolicy, resolve: Resolve | None = None) -> str:
    with pytest.raises(Refused) as refused:
        await allowed_addresses(host, 443, policy, *([resolve] if resolve else []))
    return str(refused.value)


async def test_a_name_is_judged_by_what_it_resolves_to_when_the_webhook_is_sent() -> None:
    # localhost resolves to the machine itself: fine in development, refused in production.
    assert set(await allowed_addresses("localhost", 443, DEVELOPMENT)) <= {"127.0.0.1", "::1"}
    assert "this machine" in await refusal("localhost", INTERNET_ONLY)
    # A name that does not resolve fails as the resolver does (the connection's error).
    with pytest.raises(socket.gaierror):
        await allowed_addresses("nothing.invalid", 443, INTERNET_ONLY)
    assert "private network" in await refusal("10.1.2.3", INTERNET_ONLY)
    assert await allowed_addresses("8.8.8.8", 443, INTERNET_ONLY) == ["8.8.8.8"]

    async def dns(host: str, port: int) -> list[str]:
        return {
            "hooks.example.com": ["93.184.216.34", "93.184.216.34"],
            "moved.example.com": ["10.0.0.7"],
            "split.example.com": ["93.184.216.34", "fd00::7"],
        }[host]

    assert await allowed_addresses("hooks.example.com", 443, INTERNET_ONLY, dns) == [
        "93.184.216.34"
    ]
    assert await refusal("moved.example.com", INTERNET_ONLY, dns) == (
        "moved.example.com resolves to 10.0.0.7, which is on a private network (Tenantry "
        "reaches private networks only when the operator allows them)"
    )
    assert "resolves to fd00::7" in await refusal("split.example.com", INTERNET_ONLY, dns)
    assert await allowed_addresses("moved.example.com", 443, PRIVATE_ALLOWED, dns) == ["10.0.0.7"]


def test_the_operator_allows_private_networks_by_one_variable_and_the_old_name_is_refused() -> None:
    assert Settings.from_env({}).outbound_networks == NetworkPolicy(loopback=True, private=False)
    assert Settings.from_env({"TENANTRY_PRIVATE_NETWORKS": "true"}).outbound_networks.private
    with pytest.raises(SettingsError, match="renamed TENANTRY_PRIVATE_NETWORKS"):
        Settings.from_env({"TENANTRY_WEBHOOK_PRIVATE_NETWORKS": "true"})
