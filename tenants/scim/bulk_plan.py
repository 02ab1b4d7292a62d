"""A BulkRequest (RFC 7644 §3.7) read into operations, their ``bulkId`` references and the
order they run in; plain Python, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tenants.scim.errors import InvalidSyntaxError, InvalidValueError, PayloadTooLargeError
from tenants.scim.schemas import BULK_REQUEST_URN

MAX_OPERATIONS = 1000
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")
_REF = re.compile(r"^bulkId:(.+)$")


@dataclass
class Operation:
    index: int
    method: str
    kind: str
    target: str | None
    bulk_id: str | None
    version: str | None
    data: Any
    #: The bulkIds this operation refers to (in its path or data).
    refs: set[str] = field(default_factory=set)
    result: dict[str, Any] | None = None


def parse(body: Any) -> tuple[list[Operation], int | None]:
    if not isinstance(body, dict):
        raise InvalidSyntaxError("the body must be a BulkRequest message")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST_URN not in schemas:
        raise InvalidSyntaxError(f"a BulkRequest's schemas must name {BULK_REQUEST_URN}")
    raw = body.get("Operations")
    if not isinstance(raw, list) or not raw:
        raise InvalidSyntaxError("Operations must be a non-empty list")
    if len(raw) > MAX_OPERATIONS:
        raise PayloadTooLargeError(f"a bulk request holds at most {MAX_OPERATIONS} operations")
    fail_on = body.get("failOnErrors")
    if fail_on is not None and (
        not isinstance(fail_on, int) or isinstance(fail_on, bool) or fail_on < 1
    ):
        raise InvalidValueError("failOnErrors must be a positive integer")
    operations = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidSyntaxError(f"Operations[{index}] must be an object")
        method = str(item.get("method", "")).upper()
        path = item.get("path")
        bulk_id = item.get("bulkId")
        match = _PATH.match(path) if isinstance(path, str) else None
        operation = Operation(
            index=index,
            method=method,
            kind=match.group(1) if match else "",
            target=match.group(2) if match else None,
            bulk_id=bulk_id if isinstance(bulk_id, str) else None,
            version=item.get("version") if isinstance(item.get("version"), str) else None,
            data=item.get("data"),
        )
        operation.refs = references(operation.data) | (
            {m.group(1)} if operation.target and (m := _REF.match(operation.target)) else set()
        )
        operations.append(operation)
    _check_unique_bulk_ids(operations)
    return operations, fail_on


def _check_unique_bulk_ids(operations: list[Operation]) -> None:
    """RFC 7644 §3.7: a bulkId is unique within its request. Two operations sharing one
    would make every ``bulkId:`` reference to it ambiguous, so the request is refused
    whole, before anything runs."""
    first: dict[str, int] = {}
    for op in operations:
        if op.bulk_id is None:
            continue
        if op.bulk_id in first:
            raise InvalidValueError(
                f"Operations[{op.index}].bulkId {op.bulk_id!r} is also the bulkId of "
                f"Operations[{first[op.bulk_id]}]: a bulkId must be unique within a request"
            )
        first[op.bulk_id] = op.index


def references(value: Any) -> set[str]:
    """The bulkIds ``value`` refers to (strings ``bulkId:<id>`` anywhere in it)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item.startswith("bulkId:"):
                found.add(item[len("bulkId:") :])
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def substitute(value: Any, resolve: Callable[[str], str], refs: set[str] | None = None) -> Any:
    """``value`` with each ``bulkId:<id>`` string replaced by ``resolve(id)``; given the
    operation's ``refs`` (empty: nothing to replace), returns ``value`` itself at once.
    Recursive: a request body nests at most ``validation.MAX_DEPTH`` levels (``check_body``
    refuses deeper ones as they are read)."""
    if refs is not None and not refs:
        return value
    if isinstance(value, str):
        match = _REF.match(value)
        return resolve(match.group(1)) if match else value
    if isinstance(value, list):
        return [substitute(v, resolve) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, resolve) for k, v in value.items()}
    return value


def ordered(operations: list[Operation]) -> list[Operation]:
    """Request order, each operation moved after the creations it refers to (RFC 7644
    §3.7.2): a depth-first walk in request order that places an operation once the
    creators it names (by sorted bulkId) are placed. A reference back into the walk's own
    path, a cycle, is skipped: the cycle runs from its last link back to the one it was
    entered at, and a link that then runs before the creation it names meets an
    unresolved reference (``tenants.scim.bulk`` decides what that does).

    The walk keeps its path in a list, not on Python's stack: a chain of references as
    long as a bulk request may hold (MAX_OPERATIONS) is as deep as the walk goes.
    """
    creators = {op.bulk_id: op for op in operations if op.method == "POST" and op.bulk_id}
    placed: set[int] = set()
    order: list[Operation] = []

    def named_creators(op: Operation) -> Iterator[Operation]:
        for ref in sorted(op.refs):
            creator = creators.get(ref)
            if creator is not None and creator is not op:
                yield creator

    for root in operations:
        if root.index in placed:
            continue
        path = [(root, named_creators(root))]
        on_path = {root.index}
        while path:
            op, pending = path[-1]
            creator = next(pending, None)
            if creator is None:
                path.pop()
                on_path.discard(op.index)
                placed.add(op.index)
                order.append(op)
            elif creator.index not in placed and creator.index not in on_path:
                path.append((creator, named_creators(creator)))
                on_path.add(creator.index)
    return order
