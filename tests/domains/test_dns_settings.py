"""The resolvers domain verification asks: from the environment, checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings, SettingsError
from tenants.domains.dns import DnsTxtLookup, DnsUnavailableError


def test_nameservers_and_port_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "TENANTRY_DATA_DIR": str(tmp_path), "DNS_NAMESERVERS": "192.0.2.1, 2001:db8::53",
        "DNS_PORT": "5353",
    })
    assert settings.dns_lookup() == DnsTxtLookup(("192.0.2.1", "2001:db8::53"), 5353)
    assert Settings.from_env({"TENANTRY_DATA_DIR": str(tmp_path)}).dns_nameservers == ()


def test_a_nameserver_that_is_not_an_address_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({
            "TENANTRY_DATA_DIR": str(tmp_path), "DNS_NAMESERVERS": "dns.example", "DNS_PORT": "0",
        })
    text = "\n".join(refused.value.problems)
    assert "DNS_NAMESERVERS" in text and "DNS_PORT" in text


async def test_a_resolver_that_does_not_answer_is_unavailable_not_a_missing_record() -> None:
    # TEST-NET-1 (RFC 5737) is never routed: the query times out.
    silent = DnsTxtLookup(("192.0.2.1",), 53, timeout=0.5)
    with pytest.raises(DnsUnavailableError):
        await silent.txt("_tenantry.example.org")
