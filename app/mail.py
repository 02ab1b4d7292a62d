"""Choosing this process's mail adapter from the settings (composition, not domain)."""

from __future__ import annotations

from app.settings import Settings
from tenants.mail import sender
from tenants.mail.smtp import SmtpSender


def configure_mail(settings: Settings) -> None:
    """SMTP when ``SMTP_HOST`` is set; otherwise messages are recorded and not sent."""
    adapter = None
    if settings.smtp_host:
        adapter = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            from_address=settings.mail_from,
        )
    sender.configure(adapter, base_url=settings.base_url)
