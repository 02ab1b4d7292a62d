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
    "privacy_requests.json": "your privacy requests, their timelines and their answers",
    "audit_events.json": "the audit trail of what you did and what was done to your record",
    "sessions.json": "your sessions: when, how, from which address and browser",
    "sign_ins.json": "every sign-in attempt with your email or account, refused ones too",
    "emails.json": "the emails sent to you or about you",
    "scim.json": "what your organisation's identity provider sent about you (SCIM)",
    "departures.json": "your departures from the organisation, if any",
}

#: The machine-readable index of the bundle (the README says the same for people).
INDEX_FILE = "index.json"


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
        "Every file is JSON (UTF-8). Times are in UTC (ISO 8601). index.json lists every",
        "file with what it holds, for programs.",
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


def index(
    *, request_id: str, member_id: str, built_at: datetime, files: Sequence[tuple[str, bytes]],
    products: Sequence[ProductPart], sources: dict[str, list[str]],
) -> bytes:
    """``index.json``: every file with what it holds, where it comes from (the tables of
    the personal-data map) and its size, and each product asked and whether it answered."""
    import json

    doc = {
        "format": "tenantry-export/1",
        "request_id": request_id,
        "member_id": member_id,
        "built_at": built_at.isoformat(),
        "files": [
            {"name": name, "size": len(data),
             "holds": OWN_FILES.get(name, "a product's own data" if name.startswith("products/")
                                    else "what this bundle holds"),
             "sources": sources.get(name, [])}
            for name, data in files
        ],
        "products": [{"key": p.key, "name": p.name, "answered": p.data is not None}
                     for p in products],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False).encode()


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
