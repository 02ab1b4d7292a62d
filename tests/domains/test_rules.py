"""The pure rules of domain proof: names, the record, re-checks and allowed domains."""

from __future__ import annotations

from tenants.domains import rules
from tenants.domains.rules import DomainStatus


def test_names_are_lower_cased_without_the_trailing_dot_and_junk_is_refused() -> None:
    assert rules.normalise(" Example.ORG. ") == "example.org"
    for junk in ("", "localhost", "exa mple.org", "-a.example", "a..example", "x" * 300 + ".org"):
        assert rules.normalise(junk) is None, junk


def test_the_record_may_live_at_the_domain_or_under_tenantry() -> None:
    assert rules.record_names("eu.example.org") == ("eu.example.org", "_tenantry.eu.example.org")
    assert rules.record_value("tok") == "tenantry-verification=tok"


def test_only_the_exact_record_proves_the_domain() -> None:
    assert rules.is_proven(["v=spf1 -all", " tenantry-verification=tok "], "tok")
    assert not rules.is_proven(["tenantry-verification=other"], "tok")
    assert not rules.is_proven(["tenantry-verification=tokextra"], "tok")
    assert not rules.is_proven(["tenantry-verification=to"], "tok")
    assert not rules.is_proven([], "tok")


def test_a_proven_domain_whose_record_disappears_is_flagged_once_and_restored_when_back() -> None:
    lost = rules.after_recheck(DomainStatus.VERIFIED, proven=False)
    assert (lost.status, lost.event) == (DomainStatus.FLAGGED, "flagged")
    still = rules.after_recheck(DomainStatus.FLAGGED, proven=False)
    assert (still.status, still.event) == (DomainStatus.FLAGGED, None)
    assert still.next_check_in < rules.RECHECK_EVERY
    back = rules.after_recheck(DomainStatus.FLAGGED, proven=True)
    assert (back.status, back.event) == (DomainStatus.VERIFIED, "restored")
    fine = rules.after_recheck(DomainStatus.VERIFIED, proven=True)
    assert (fine.status, fine.event, fine.next_check_in) == (
        DomainStatus.VERIFIED, None, rules.RECHECK_EVERY
    )


def test_a_connection_admits_only_proven_domains_whatever_it_lists() -> None:
    owned = ["a.example", "b.example"]
    assert rules.effective_allowed_domains([], owned) == ["a.example", "b.example"]
    assert rules.effective_allowed_domains(["b.example"], owned) == ["b.example"]
    # Listing an unproven domain admits nobody from it, and never widens to all.
    assert rules.effective_allowed_domains(["evil.example"], owned) == []
    assert rules.effective_allowed_domains(["b.example"], []) == []


def test_an_address_is_outside_unless_its_exact_domain_is_proven() -> None:
    owned = ["acme.example", "eu.acme.example"]
    assert rules.outside_domain("ada@acme.example", owned) is None
    assert rules.outside_domain("Ada@ACME.Example", owned) is None
    assert rules.outside_domain("ada@eu.acme.example", owned) is None
    assert rules.outside_domain("ada@us.acme.example", owned) == "us.acme.example"
    assert rules.outside_domain("carl@contractor.example", owned) == "contractor.example"
    assert rules.outside_domain("ada@acme.example", []) == "acme.example"
