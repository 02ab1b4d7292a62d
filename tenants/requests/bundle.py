"""The export bundle: a ZIP of JSON files with a README, built from bytes; no I/O.

Separate from collecting the data (``tenants.requests.fulfilment``) so the format is
tested, and benchmarked, on its own.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping, Sequence
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
    recipients: Sequence[str],
    retention: Mapping[str, int],
) -> str:
    """The README.txt: what the bundle is, what each file holds, who did not answer, and
    what else a person asking for their data has a right to be told (GDPR Art. 15(1),
    15(2)): who decides, where the data comes from, who receives it, how long it is kept,
    that no decision is automated, and their rights. ``recipients``: the products the
    member has an account in; ``retention``: the organisation's periods in days."""
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
        "About this data (GDPR Art. 15)",
        "------------------------------",
        "",
        f"Who decides: {organisation} decides why and how this data is used (it is the",
        "controller); Tenantry keeps and processes it on its behalf. The privacy team of",
        f"{organisation} answers for the purposes and the legal basis of each use: ask them",
        "with a privacy request from your account page.",
        "",
        f"Where it comes from: from {organisation} (its administrators, its identity provider",
        "and directory: scim.json), from its products (content_items.json), and from you.",
        "",
        "Who receives it: the products you have an account in, each what it needs to run",
        "that account and the privacy settings that apply to you"
        + (": " + ", ".join(recipients) + "." if recipients else " (you have none)."),
        "",
        "How long it is kept: while you are a member. After you leave, what the law makes",
        "the organisation keep is kept until the date given then, and the rest is deleted.",
        f"Some records go sooner: emails after {retention['mail_days']} days, ended sessions after",
        f"{retention['session_days']} days, the sign-in log after {retention['sign_in_days']} days, "
        f"checks of access to your data after {retention['access_log_days']} days.",
        "",
        "Automated decisions: none about you is made by automated means alone with legal or",
        "similarly significant effects (GDPR Art. 22). The settings that apply to you follow",
        "your organisation's rules, shown with their reasons on your account page.",
        "",
        "Your rights: to have data corrected (rectification) or erased, to restrict or object",
        "to its use, to receive it in a machine-readable form (these files are), and to",
        "withdraw consent, each by a privacy request from your account page; and to lodge a",
        "complaint with a data protection supervisory authority (in the EU, the one where",
        "you live or work; GDPR Art. 77).",
        "",
    ]
    return "\n".join(lines)


def index(
    *,
    request_id: str,
    member_id: str,
    built_at: datetime,
    files: Sequence[tuple[str, bytes]],
    products: Sequence[ProductPart],
    sources: dict[str, list[str]],
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
            {
                "name": name,
                "size": len(data),
                "holds": OWN_FILES.get(
                    name,
                    "a product's own data"
                    if name.startswith("products/")
                    else "what this bundle holds",
                ),
                "sources": sources.get(name, []),
            }
            for name, data in files
        ],
        "products": [
            {"key": p.key, "name": p.name, "answered": p.data is not None} for p in products
        ],
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
