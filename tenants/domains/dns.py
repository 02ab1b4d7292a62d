"""Looking up TXT records: a small port and its dnspython adapter.

The resolvers are configuration (``DNS_NAMESERVERS``/``DNS_PORT``): production may point
at its own recursive resolvers, tests at a DNS server they run. dnspython errors are
translated here; callers see a list of strings or ``DnsUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenants.errors import TenantryError


class DnsUnavailableError(TenantryError):
    """The resolvers did not answer: nothing can be concluded about the record."""

    code = "dns_unavailable"
    title = "DNS lookup failed"


class TxtLookup(Protocol):
    async def txt(self, name: str) -> list[str]:
        """The TXT strings at ``name`` ([] when it has none or does not exist);
        DnsUnavailableError when the resolvers cannot be asked."""
        ...


@dataclass(frozen=True, slots=True)
class DnsTxtLookup:
    #: Empty: the system's resolvers (/etc/resolv.conf).
    nameservers: Sequence[str] = ()
    port: int = 53
    timeout: float = 3.0

    async def txt(self, name: str) -> list[str]:
        # dnspython is imported on the first lookup, not with the settings that name this
        # class: its import costs every process start (serve, worker, each CLI command)
        # about 0.1 s of CPU, and only domain verification looks anything up.
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        resolver = dns.asyncresolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            resolver.nameservers = list(self.nameservers)
            resolver.port = self.port
        resolver.lifetime = self.timeout
        try:
            answer = await resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsUnavailableError(
                f"the DNS resolvers did not answer for {name}; try again later"
            ) from exc
        except dns.exception.DNSException as exc:
            raise DnsUnavailableError(f"the DNS lookup of {name} failed; try again later") from exc
        values = []
        for rdata in answer:
            strings = getattr(rdata, "strings", ())
            values.append(b"".join(strings).decode("utf-8", "replace"))
        return values
