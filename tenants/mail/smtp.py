"""The ``MailSender`` adapter for SMTP, on aiosmtplib.

Library errors are translated here (``raise MailDeliveryError(...) from exc``): a refusal
with a 5xx reply, or of every recipient, is permanent; connection trouble, timeouts and
4xx replies are worth retrying.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import aiosmtplib

from tenants.mail.sender import MailDeliveryError, OutgoingMail, SmtpSecurity

DEFAULT_PORTS = {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}


@dataclass(frozen=True, slots=True)
class SmtpSender:
    host: str
    from_address: str
    port: int | None = None
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    def build(self, mail: OutgoingMail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = formataddr((f"{mail.organisation_name} via Tenantry", self.from_address))
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        domain = self.from_address.rpartition("@")[2] or "tenantry.invalid"
        message["Message-ID"] = f"<{mail.message_id}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: OutgoingMail) -> list[str]:
        message = self.build(mail)
        try:
            errors, _ = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port or DEFAULT_PORTS[self.security],
                username=self.username,
                password=self.password,
                use_tls=self.security is SmtpSecurity.TLS,
                start_tls=self.security is SmtpSecurity.STARTTLS,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MailDeliveryError(f"every recipient was refused: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            raise MailDeliveryError(
                f"the mail server answered {exc.code} {exc.message}", permanent=permanent
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(f"could not reach the mail server: {exc}") from exc
        # Some recipients may be refused while the others have the message: not retried
        # (the accepted ones would get it twice); the caller records the refusals.
        return [f"{address} ({reply.code} {reply.message})" for address, reply in errors.items()]
