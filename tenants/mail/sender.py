"""The port through which email leaves Tenantry, and the process-wide choice of adapter.

Domain code never sends mail itself: it records a message and queues a ``mail.send`` job
(``tenants.mail.service.send_later``); the job hands the message to whatever
``MailSender`` the composition root configured. With none configured (no SMTP settings,
as in the demo) messages are recorded and marked ``not_sent``, so the service runs the
same with or without a mail server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class SmtpSecurity(StrEnum):
    #: Plain connection (a relay on localhost, a test server).
    NONE = "none"
    #: Plain connection upgraded with STARTTLS (usually port 587).
    STARTTLS = "starttls"
    #: TLS from the first byte (SMTPS, usually port 465).
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One message as the adapter needs it; the adapter adds the From header."""

    to: Sequence[str]
    subject: str
    text: str
    html: str
    #: Shown as the sender's display name ("Acme Corporation via Tenantry").
    organisation_name: str
    #: Stable per message, so a retried send carries the same Message-ID.
    message_id: str


class MailDeliveryError(Exception):
    """The mail server did not take the message. ``permanent`` when retrying cannot help
    (every recipient refused, message refused with a 5xx); otherwise the job retries
    with backoff."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailSender(Protocol):
    async def send(self, mail: OutgoingMail) -> Sequence[str]:
        """Hand ``mail`` to the mail server; returns the recipients it refused while
        accepting the others (usually none). MailDeliveryError when it took nothing."""


_sender: MailSender | None = None
_base_url = "http://127.0.0.1:8000"
_told_unconfigured = False


def configure(sender: MailSender | None, *, base_url: str) -> None:
    """Choose the adapter for this process (None: record messages, send nothing) and the
    service's public address, which links in emails start with."""
    global _sender, _base_url, _told_unconfigured
    _sender = sender
    _base_url = base_url.rstrip("/")
    _told_unconfigured = False


def link(path: str) -> str:
    """The full address of a page of the service (``/account``)."""
    return _base_url + path


def current() -> MailSender | None:
    """The configured adapter; logs once per process when there is none."""
    global _told_unconfigured
    if _sender is None and not _told_unconfigured:
        _told_unconfigured = True
        log.warning("no SMTP server is configured: emails are recorded but not sent")
    return _sender
