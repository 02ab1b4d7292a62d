"""What a product may say about one content item, checked without I/O.

Products register items one at a time or in NDJSON batches (one JSON object per line,
https://github.com/ndjson/ndjson-spec). Both go through ``parse_item``, so a batch line
and a single request are refused for the same reasons. A batch is all or nothing: every
line is checked before anything is written, and the problems are reported by line number
(``line 17``), the first line being 1.

Checks needing the database (does the member exist, is the product this client's) come
after parsing, in ``check_references``, over plain data the service looked up in bulk.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tenants import json_objects
from tenants import text as text_policy
from tenants.content.models import ContentKind
from tenants.errors import FieldProblem
from tenants.members.lifecycle import MemberStatus

#: Items per request; a batch of this many is about 40 MB of NDJSON.
MAX_ITEMS = 100_000
MAX_EXTERNAL_ID = 255
MAX_TITLE = 500
MAX_URL = 2000
MAX_SIZE = 2**63 - 1
#: Problems listed in one refusal; the total count is always given.
MAX_REPORTED = 50

FIELDS = frozenset(
    {
        "product_id",
        "external_id",
        "member_id",
        "title",
        "kind",
        "size",
        "item_created_at",
        "export_url",
        "legal_hold",
    }
)
REQUIRED = frozenset({"external_id", "member_id", "title", "kind"})
_NO_ID = str(uuid.UUID(int=0))
KINDS = frozenset(k.value for k in ContentKind)
#: Members whose items can no longer be registered: they have left.
LEFT = frozenset({MemberStatus.DEPARTED, MemberStatus.PURGED})


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One item as a product states it; ``line`` is where it came from (1 for a single item)."""

    line: int
    product_id: uuid.UUID | None
    external_id: str
    member_id: uuid.UUID
    title: str
    kind: ContentKind
    size: int
    item_created_at: datetime | None
    export_url: str | None
    #: True asks for a hold. False never clears one: only an admin does, with a reason.
    legal_hold: bool


@dataclass(frozen=True, slots=True)
class LineProblem:
    line: int
    field: str
    reason: str
    #: The caller may not do this at all (403), rather than having said it wrongly (422).
    forbidden: bool = False


def _text(value: Any, name: str, limit: int, problems: list[tuple[str, str]]) -> str:
    if not isinstance(value, str):
        problems.append((name, "expected a string"))
        return ""
    if not value.strip():
        problems.append((name, "is empty"))
    elif len(value) > limit:
        problems.append((name, f"is longer than {limit} characters"))
    else:
        try:
            return text_policy.clean_name(value)  # the one text policy, as /v1's models apply it
        except text_policy.TextError as exc:
            problems.append((name, str(exc)))
    return value


def _uuid(
    value: Any, name: str, problems: list[tuple[str, str]], seen: dict[str, uuid.UUID]
) -> uuid.UUID | None:
    if isinstance(value, str) and len(value) <= 36:
        known = seen.get(value)
        if known is not None:
            return known
        try:
            seen[value] = uuid.UUID(value)
            return seen[value]
        except ValueError:
            pass
    problems.append((name, "expected a uuid string"))
    return None


#: An absolute https URL with a host, without whitespace or control characters: the member
#: follows it from their account page to fetch their item (plain http would let anyone on
#: the way read or change what they download, as the error and the schema always said).
URL = re.compile(r"https://[^\s/?#\x00-\x1f\x7f]+(?:[/?#][^\s\x00-\x1f\x7f]*)?", re.ASCII)


def check_url(value: str) -> str | None:
    """Why ``value`` cannot be a link for the owner to follow, or None when it can."""
    if len(value) > MAX_URL:
        return f"is longer than {MAX_URL} characters"
    if not URL.fullmatch(value):
        return "expected an https:// URL without spaces"
    return None


def parse_item(
    raw: Any, line: int, seen: dict[str, uuid.UUID] | None = None
) -> ItemSpec | list[LineProblem]:
    """An item from one decoded JSON value, or every problem found in it. ``seen`` caches
    parsed ids across the lines of a batch (most lines name the same few members)."""
    seen = {} if seen is None else seen
    if not isinstance(raw, dict):
        return [LineProblem(line, "body", "expected a JSON object")]
    problems: list[tuple[str, str]] = []
    if not raw.keys() >= REQUIRED or not raw.keys() <= FIELDS:
        problems += [(str(k), "is not a known field") for k in raw if k not in FIELDS]
        problems += [(name, "is required") for name in sorted(REQUIRED) if name not in raw]
    product_id = None
    if raw.get("product_id") is not None:
        product_id = _uuid(raw["product_id"], "product_id", problems, seen)
    external_id = _text(raw.get("external_id", "-"), "external_id", MAX_EXTERNAL_ID, problems)
    member_id = _uuid(raw.get("member_id", _NO_ID), "member_id", problems, seen)
    title = _text(raw.get("title", "-"), "title", MAX_TITLE, problems)
    kind = raw.get("kind", ContentKind.ORGANISATION.value)
    if not isinstance(kind, str) or kind not in KINDS:
        problems.append(("kind", f"expected one of {', '.join(sorted(KINDS))}"))
    size = raw.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool):
        problems.append(("size", "expected an integer (bytes)"))
    elif not 0 <= size <= MAX_SIZE:
        problems.append(("size", f"must be between 0 and {MAX_SIZE}"))
    created = raw.get("item_created_at")
    item_created_at = None
    if created is not None:
        try:
            item_created_at = datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            item_created_at = None
        if item_created_at is None or item_created_at.tzinfo is None:
            problems.append(("item_created_at", "expected an ISO 8601 time with its UTC offset"))
        else:
            try:
                item_created_at = item_created_at.astimezone(UTC)
            except OverflowError:
                problems.append(("item_created_at", "is out of range once converted to UTC"))
    export_url = raw.get("export_url")
    if export_url is not None:
        reason = check_url(export_url) if isinstance(export_url, str) else "expected a string"
        if reason:
            problems.append(("export_url", reason))
    legal_hold = raw.get("legal_hold", False)
    if not isinstance(legal_hold, bool):
        problems.append(("legal_hold", "expected true or false"))
    if problems or member_id is None:
        return [LineProblem(line, field, reason) for field, reason in problems]
    return ItemSpec(
        line=line,
        product_id=product_id,
        external_id=external_id,
        member_id=member_id,
        title=title,
        kind=ContentKind(kind),
        size=size,
        item_created_at=item_created_at,
        export_url=export_url,
        legal_hold=legal_hold,
    )


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of ``body``; blank lines (a trailing newline, CRLF) are skipped."""
    for number, text in enumerate(body.split(b"\n"), start=1):
        if text.strip():
            yield number, text


def parse_ndjson(
    body: bytes, *, max_items: int = MAX_ITEMS
) -> tuple[list[ItemSpec], list[LineProblem]]:
    """Every item of an NDJSON body and every problem, by line. Stops counting items past
    ``max_items`` (one problem says so) so an oversized body costs no more than a full one."""
    items: list[ItemSpec] = []
    problems: list[LineProblem] = []
    count = 0
    seen: dict[str, uuid.UUID] = {}
    for number, text in _lines(body):
        count += 1
        if count > max_items:
            problems.append(
                LineProblem(number, "body", f"a request holds at most {max_items} items")
            )
            break
        try:
            raw = json_objects.loads(text)
        except json_objects.DuplicateKeyError as exc:
            problems.append(LineProblem(number, exc.key, "is named twice in the line"))
            continue
        except (ValueError, RecursionError) as exc:
            problems.append(LineProblem(number, "body", f"is not valid JSON: {exc}"))
            continue
        parsed = parse_item(raw, number, seen)
        if isinstance(parsed, ItemSpec):
            items.append(parsed)
        else:
            problems += parsed
    if count == 0:
        problems.append(LineProblem(1, "body", "the body holds no items"))
    return items, problems


def assign_products(
    items: Sequence[ItemSpec], acting: uuid.UUID | None
) -> tuple[list[ItemSpec], list[LineProblem]]:
    """Items with their product filled in, and the lines naming a product they may not.

    A product's own client (``acting``) registers only that product's items and may leave
    ``product_id`` out; any other caller (an API token) must name the product.
    """
    assigned: list[ItemSpec] = []
    problems: list[LineProblem] = []
    for item in items:
        if acting is not None:
            if item.product_id not in (None, acting):
                problems.append(
                    LineProblem(
                        item.line,
                        "product_id",
                        "a product's client registers only its own product's items",
                        forbidden=True,
                    )
                )
                continue
            assigned.append(item if item.product_id else replace(item, product_id=acting))
        elif item.product_id is None:
            problems.append(
                LineProblem(item.line, "product_id", "is required unless a product's client calls")
            )
        else:
            assigned.append(item)
    return assigned, problems


def check_references(
    items: Sequence[ItemSpec],
    products: Collection[uuid.UUID],
    members: Mapping[uuid.UUID, MemberStatus],
) -> list[LineProblem]:
    """Problems with what the items point at: unknown products and members, members who
    have left, and the same (product, external id) given twice (which item would win?)."""
    problems: list[LineProblem] = []
    first_line: dict[tuple[uuid.UUID | None, str], int] = {}
    for item in items:
        if item.product_id not in products:
            problems.append(
                LineProblem(item.line, "product_id", f"no product with id {item.product_id}")
            )
        status = members.get(item.member_id)
        if status is None:
            problems.append(
                LineProblem(item.line, "member_id", f"no member with id {item.member_id}")
            )
        elif status in LEFT:
            problems.append(
                LineProblem(item.line, "member_id", "the member has left the organisation")
            )
        key = (item.product_id, item.external_id)
        earlier = first_line.setdefault(key, item.line)
        if earlier != item.line:
            problems.append(
                LineProblem(item.line, "external_id", f"is already given on line {earlier}")
            )
    return problems


def field_problems(problems: Sequence[LineProblem], *, by_line: bool) -> list[FieldProblem]:
    """Problems as fields of a refusal, in line order, at most ``MAX_REPORTED``: named
    ``line 17`` (reason ``member_id: ...``) for a batch, by field for a single item."""
    ordered = sorted(problems, key=lambda p: p.line)[:MAX_REPORTED]
    if by_line:
        return [
            FieldProblem(
                f"line {p.line}", p.reason if p.field == "body" else f"{p.field}: {p.reason}"
            )
            for p in ordered
        ]
    return [FieldProblem(p.field, p.reason) for p in ordered]
