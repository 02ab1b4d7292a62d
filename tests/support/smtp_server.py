"""A real SMTP server for tests (aiosmtpd), on a free port of 127.0.0.1, that records what
it accepted and can refuse chosen recipients for good (550)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tenants.mail import sender
from tenants.mail.sender import SmtpSecurity
from tenants.mail.smtp import SmtpSender

FROM = "privacy@tenantry.test"


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


@dataclass
class RecordingHandler:
    delivered: list[Delivered] = field(default_factory=list)
    #: Recipients refused with 550 (a mailbox that does not exist).
    unknown: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.unknown:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos),
                                        bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def smtp_server(port: int | None = None) -> AsyncIterator[tuple[RecordingHandler, int]]:
    """An SMTP server on ``port`` (default: a free one) for the duration of the block."""
    handler = RecordingHandler()
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield handler, port
    finally:
        await asyncio.to_thread(controller.stop)


@contextlib.contextmanager
def mail_to(port: int) -> Iterator[None]:
    """This process sends mail to 127.0.0.1:``port`` (plain SMTP) inside the block, and
    records without sending afterwards (as the tests' app is configured)."""
    base_url = sender.link("")
    sender.configure(
        SmtpSender(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, from_address=FROM,
                   timeout=5),
        base_url=base_url,
    )
    try:
        yield
    finally:
        sender.configure(None, base_url=base_url)
