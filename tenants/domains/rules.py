"""Domain names and their proof, as plain rules (no DNS, no database).

A domain counts for an organisation (home-realm discovery, just-in-time provisioning,
allowed domains, the identity backend) only once it is proven with a DNS TXT record
``tenantry-verification=<token>`` at the domain itself or at ``_tenantry.<domain>``. The
proof is per name: owning ``example.org`` proves nothing about ``eu.example.org``, and
proving ``eu.example.org`` gives no claim on ``example.org`` or its other names, because
routing matches the exact domain of an address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
RECORD_PREFIX = "tenantry-verification="
SUBDOMAIN_LABEL = "_tenantry"
#: How often a proven domain's record is looked up again.
RECHECK_EVERY = timedelta(days=1)
#: How soon a flagged domain is looked up again (the record may come back).
RECHECK_FLAGGED_EVERY = timedelta(hours=1)


class DomainStatus(StrEnum):
    #: Added, its record not found yet: counts for nothing.
    PENDING = "pending"
    #: Proven: routes sign-ins, and no other organisation may prove it.
    VERIFIED = "verified"
    #: Was proven, but the record has gone at the last check: still the organisation's
    #: (flagged and the owners told, not silently dropped) until they fix or remove it.
    FLAGGED = "flagged"


class DomainProof(StrEnum):
    DNS = "dns"
    #: Demo data and test fixtures: vouched for by whoever seeded them, never by DNS.
    SEED = "seed"


#: Statuses in which a domain is the organisation's.
OWNED = frozenset({DomainStatus.VERIFIED, DomainStatus.FLAGGED})


def normalise(raw: str) -> str | None:
    """Lower case, no trailing dot; None when it is not a domain name."""
    domain = raw.strip().lower().rstrip(".")
    return domain if DOMAIN.match(domain) else None


def record_names(domain: str) -> tuple[str, str]:
    """Where the TXT record may be published, in the order they are looked up."""
    return (domain, f"{SUBDOMAIN_LABEL}.{domain}")


def record_value(token: str) -> str:
    return f"{RECORD_PREFIX}{token}"


def is_proven(txt_values: Iterable[str], token: str) -> bool:
    """Whether one of the TXT strings is exactly this domain's record (spaces around it
    forgiven; another organisation's token or a prefix of ours is not proof)."""
    wanted = record_value(token)
    return any(value.strip() == wanted for value in txt_values)


@dataclass(frozen=True, slots=True)
class Recheck:
    """What a periodic re-check changes."""

    status: DomainStatus
    #: "flagged" (the record disappeared), "restored" (it came back) or None (no change).
    event: str | None
    next_check_in: timedelta


def after_recheck(status: DomainStatus, proven: bool) -> Recheck:
    """The next state of an owned domain after its record was looked up again."""
    if proven:
        event = "restored" if status == DomainStatus.FLAGGED else None
        return Recheck(DomainStatus.VERIFIED, event, RECHECK_EVERY)
    event = "flagged" if status == DomainStatus.VERIFIED else None
    return Recheck(DomainStatus.FLAGGED, event, RECHECK_FLAGGED_EVERY)


def effective_allowed_domains(allowed: Iterable[str], owned: Iterable[str]) -> list[str]:
    """The email domains a sign-in connection admits: the ones it lists that the
    organisation owns, or all it owns when it lists none. An unproven domain never counts,
    whatever the connection lists."""
    owned_set = set(owned)
    listed = list(allowed)
    if not listed:
        return sorted(owned_set)
    return [d for d in listed if d in owned_set]


def outside_domain(email: str, owned: Iterable[str]) -> str | None:
    """The domain of ``email`` when it is none of ``owned`` (the organisation's proven
    domains), else None. Routing matches the exact domain, so a member at such an address
    is not found by the sign-in page from it, and single sign-on admits only owned domains
    (``effective_allowed_domains``). Legitimate (a contractor), but worth a second look."""
    domain = domain_of(email)
    return None if domain in set(owned) else domain


def domain_of(email: str) -> str:
    """The domain of an address as domains are kept (lower case, no final dot)."""
    return email.rpartition("@")[2].strip().lower().rstrip(".")


def next_check_at(now: datetime, recheck: Recheck) -> datetime:
    return now + recheck.next_check_in
