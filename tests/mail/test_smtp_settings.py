"""SMTP settings: read from the environment with every bad value reported at once; without
SMTP_HOST the service records emails and sends none."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.mail import configure_mail
from app.settings import Settings, SettingsError
from tenants.mail import sender
from tenants.mail.sender import SmtpSecurity
from tenants.mail.smtp import SmtpSender


def test_every_bad_smtp_value_is_reported_together(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({
            "TENANTRY_DATA_DIR": str(tmp_path), "SMTP_HOST": "mail.example", "SMTP_PORT": "0",
            "SMTP_SECURITY": "ssl", "SMTP_USERNAME": "bot", "SMTP_FROM": "Bot <bot@x>",
        })
    text = "\n".join(refused.value.problems)
    for name in ("SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME and SMTP_PASSWORD", "SMTP_FROM"):
        assert name in text, text


def test_smtp_settings_choose_the_smtp_adapter_and_none_records_only(tmp_path: Path) -> None:
    configured = Settings.from_env({
        "TENANTRY_DATA_DIR": str(tmp_path), "SMTP_HOST": "mail.example", "SMTP_SECURITY": "TLS",
        "SMTP_USERNAME": "bot", "SMTP_PASSWORD": "s3cret", "SMTP_FROM": "privacy@acme.example",
        "TENANTRY_PUBLIC_URL": "https://tenantry.acme.example",
    })
    previous = sender.link("")
    try:
        configure_mail(configured)
        adapter = sender.current()
        assert isinstance(adapter, SmtpSender)
        assert (adapter.host, adapter.port, adapter.security) == ("mail.example", None,
                                                                   SmtpSecurity.TLS)
        assert sender.link("/account") == "https://tenantry.acme.example/account"
        configure_mail(Settings.from_env({"TENANTRY_DATA_DIR": str(tmp_path)}))
        assert sender.current() is None
    finally:
        sender.configure(None, base_url=previous)
