"""Members' email addresses in one normal form, whichever edge they come through (the
``/v1`` API, a console form, a CSV import), so that one address is one member."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

#: The longest address kept (RFC 5321's path limit, as the column holds it).
MAX_LENGTH = 320


def normal_email(address: str) -> str | None:
    """``address`` as the service stores an address sent to the API (email-validator's
    normal form, which pydantic's EmailStr gives: NFC, the domain in lower case; then all in
    lower case, as ``members.service`` keeps it); None when it is not an address."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    normal = checked.normalized.lower()
    return normal if len(normal) <= MAX_LENGTH else None
