"""The export bundle: a ZIP of JSON files with a README, built from bytes; no I/O.

Separate from collecting the data (``tenants.requests.fulfilment``) so the format is
tested, and benchmarked, on its own.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

#: Deflate level: 6 is zlib's default, the usual balance of size and time.
COMPRESS_LEVEL = 6

#: What each of Tenantry's own files holds, for the README (in this order).
OWN_FILES: dict[str, str] = {
    "profile.json": "your member record: name, email, status, roles, unit and manager",
    "groups.json": "the groups you belong to",
    "product_accounts.json": "your accounts in the organisation's products",
    "settings.json": "your privacy settings: your own choices and the effective values",
    "content_items.json": "what products registered about your content (titles, sizes, "
    "dates; not the content itself)",
    "data_access.json": "administrators' approved access to your data, and each access",
    "privacy_requests.json": "your privacy requests and their answers",
    "audit_events.json": "the audit trail of what you did and what was done to your record",
}


@dataclass(frozen=True, slots=True)
class ProductPart:
    key: str
    name: str
    #: The JSON the product uploaded; None when it did not answer in time.
    data: bytes | None


@dataclass(frozen=True, slots=True)
class BuiltBundle:
    content: bytes
    sha256: str
    #: ``[{"name": ..., "size": ...}]`` (uncompressed sizes).
    files: list[dict[str, object]]


def readme(
    *,
    organisation: str,
    member_name: str,
    member_email: str,
    request_id: str,
    built_at: datetime,
    products: Sequence[ProductPart],
) -> str:
    """The README.txt: what the bundle is, what each file holds, who did not answer."""
    lines = [
        f"Your data held by {organisation}",
        "=" * (len(organisation) + 19),
        "",
        f"This is a copy of the personal data {organisation} holds about",
        f"{member_name} <{member_email}>, made for privacy request {request_id}",
        f"on {built_at.strftime('%Y-%m-%d at %H:%M UTC')}.",
        "",
        "Every file is JSON (UTF-8). Times are in UTC (ISO 8601).",
        "",
        "Kept by Tenantry, the service through which your organisation manages your account:",
        "",
    ]
    lines += [f"  {name:<24} {text}" for name, text in OWN_FILES.items()]
    answered = [p for p in products if p.data is not None]
    missing = [p for p in products if p.data is None]
    lines += ["", "Sent by the organisation's products:", ""]
    if answered:
        lines += [f"  products/{p.key}.json  {p.name}" for p in answered]
    else:
        lines.append("  (none)")
    if missing:
        lines += [
            "",
            "These products were asked for your data but had not sent it when this copy was",
            "made; ask your organisation's privacy team if you need it:",
            "",
            *[f"  {p.name}" for p in missing],
        ]
    lines += [
        "",
        "If something is missing or wrong, you can ask for it to be corrected (a",
        "rectification request) from your account page.",
        "",
    ]
    return "\n".join(lines)


def build_zip(files: Sequence[tuple[str, bytes]]) -> BuiltBundle:
    """The ZIP of ``files`` (name, bytes) in the order given, deflated."""
    buffer = io.BytesIO()
    listed: list[dict[str, object]] = []
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as archive:
        for name, data in files:
            archive.writestr(name, data)
            listed.append({"name": name, "size": len(data)})
    content = buffer.getvalue()
    return BuiltBundle(content, hashlib.sha256(content).hexdigest(), listed)
