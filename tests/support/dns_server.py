"""A real DNS server for the tests (dnslib's), answering TXT queries from a zone the test
edits: domain verification is tested against DNS on the wire, not a fake resolver.

Names not in the zone answer NXDOMAIN; the server listens on 127.0.0.1 on a free UDP port
(and TCP, for answers too large for UDP), and the app's settings point the verifier at it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """TXT records by name (lower case, no trailing dot); safe to edit while serving."""

    records: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queries: int = 0

    def publish(self, name: str, value: str) -> None:
        with self.lock:
            self.records.setdefault(name.lower().rstrip("."), []).append(value)

    def withdraw(self, name: str) -> None:
        with self.lock:
            self.records.pop(name.lower().rstrip("."), None)

    def clear(self) -> None:
        with self.lock:
            self.records.clear()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.queries += 1
            values = list(self.records.get(name, ()))
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        return reply


@dataclass(frozen=True)
class RunningDns:
    zone: Zone
    address: str
    port: int


#: The server this test session runs (for helpers that have no fixture at hand).
CURRENT: RunningDns | None = None


@contextmanager
def run_dns_server() -> Iterator[RunningDns]:
    global CURRENT
    zone = Zone()
    quiet = DNSLogger(logf=lambda *_: None)
    udp = DNSServer(zone, address="127.0.0.1", port=0, logger=quiet)
    port = udp.server.server_address[1]
    tcp = DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=quiet)
    udp.start_thread()
    tcp.start_thread()
    CURRENT = RunningDns(zone, "127.0.0.1", port)
    try:
        yield CURRENT
    finally:
        CURRENT = None
        udp.stop()
        tcp.stop()
