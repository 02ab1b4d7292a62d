"""The order bulk operations run in (RFC 7644 §3.7.2), without a database: each operation
after the creations it refers to, in request order otherwise, cycles left as they come;
checked against the recursive definition it had, on any small graph and on the longest
chain a bulk request may hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.scim.bulk_plan import MAX_OPERATIONS, Operation, ordered, parse

BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def operation(index: int, bulk_id: str | None, refs: set[str], method: str = "POST") -> Operation:
    return Operation(index, method, "Users", None, bulk_id, None, None, refs)


def recursive_order(operations: list[Operation]) -> list[Operation]:
    """The order as first written: a depth-first walk in request order, each operation
    after the creators it names (sorted by bulkId), a reference back into the walk's own
    path (a cycle) skipped."""
    creators = {op.bulk_id: op for op in operations if op.method == "POST" and op.bulk_id}
    done: set[int] = set()
    result: list[Operation] = []
    visiting: set[int] = set()

    def visit(op: Operation) -> None:
        if op.index in done or op.index in visiting:
            return
        visiting.add(op.index)
        for ref in sorted(op.refs):
            creator = creators.get(ref)
            if creator is not None and creator is not op:
                visit(creator)
        visiting.discard(op.index)
        done.add(op.index)
        result.append(op)

    for op in operations:
        visit(op)
    return result


IDS = ["a", "b", "c", "d", "e", "f"]
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["POST", "POST", "PATCH", "DELETE"]),
        st.none() | st.sampled_from(IDS),
        st.sets(st.sampled_from([*IDS, "unknown"]), max_size=3),
    ),
    max_size=10,
).map(
    lambda specs: [
        operation(index, bulk_id, refs, method)
        for index, (method, bulk_id, refs) in enumerate(specs)
    ]
)


@settings(max_examples=500)
@given(OPERATIONS)
def test_the_order_is_the_depth_first_order_cycles_and_duplicates_included(
    operations: list[Operation],
) -> None:
    found = [op.index for op in ordered(operations)]
    assert found == [op.index for op in recursive_order(operations)]
    assert sorted(found) == list(range(len(operations)))


def test_an_operation_runs_after_the_creations_it_names_a_cycle_after_its_first_link() -> None:
    operations = [
        operation(0, "group", {"boss", "worker"}),
        operation(1, "worker", {"boss"}),
        operation(2, "boss", set()),
        operation(3, "x", {"y"}),
        operation(4, "y", {"x"}),
        operation(5, "self", {"self"}),
    ]
    assert [op.index for op in ordered(operations)] == [2, 1, 0, 4, 3, 5]


def test_a_chain_as_long_as_a_bulk_request_holds_runs_from_its_end() -> None:
    """Found by a fuzzer: each link was a level of recursion, and a thousand of them
    (within the published maxOperations) a RecursionError."""
    body = {
        "schemas": [BULK_URN],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": f"b{i}",
                "data": {"manager": {"value": f"bulkId:b{i + 1}"}}
                if i < MAX_OPERATIONS - 1
                else {},
            }
            for i in range(MAX_OPERATIONS)
        ],
    }
    operations, _ = parse(body)
    assert [op.index for op in ordered(operations)] == list(reversed(range(MAX_OPERATIONS)))
    cycle = [operation(i, f"b{i}", {f"b{(i + 1) % MAX_OPERATIONS}"}) for i in range(MAX_OPERATIONS)]
    assert [op.index for op in ordered(cycle)] == list(reversed(range(MAX_OPERATIONS)))
