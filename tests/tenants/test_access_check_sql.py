"""The SQL that answers products' access checks gives the answers of the pure rules.

``check_data_access`` (one check) and ``check_data_access_batch`` (many in one statement)
run as the runtime role, in autocommit as the API's fast path runs them, over every
combination of up to two grants from a palette of grant states, for each category and
two products; each answer must equal ``rules.answer_check`` over the same grants."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants.access.log import BATCH_SQL, CHECK_SQL
from tenants.access.models import DataCategory, GrantStatus
from tenants.access.rules import CheckedGrant, answer_check
from tests.conftest import OrgHandle, make_member, make_product, make_unit

NOW = datetime.now(UTC)
ALL = [c.value for c in DataCategory]


def palette(product: str, other_product: str) -> list[dict[str, Any]]:
    """Grant shapes (for the admin and the member, or the member's unit), each ending at a
    different time so no two tie in the ranking."""
    hours = itertools.count(1)

    def grant(
        status: GrantStatus,
        categories: list[str],
        products: list[str] | None,
        ends: int | None,
        unit: bool = False,
    ) -> dict[str, Any]:
        return {
            "status": status,
            "categories": categories,
            "all_products": products is None,
            "product_ids": products or [],
            "ends_at": None if ends is None else NOW + timedelta(hours=ends, minutes=next(hours)),
            "unit": unit,
        }

    return [
        grant(GrantStatus.REQUESTED, ["files"], None, None),
        grant(GrantStatus.DENIED, ALL, None, None),
        grant(GrantStatus.REVOKED, ALL, None, 5),
        grant(GrantStatus.APPROVED, ["files"], [product], 3),
        grant(GrantStatus.APPROVED, ["interaction", "files"], None, 2),
        grant(GrantStatus.APPROVED, ALL, None, -2),
        grant(GrantStatus.APPROVED, ["diagnostic"], None, 4, unit=True),
        grant(GrantStatus.APPROVED, ["communications"], [other_product], 6),
    ]


@pytest.fixture
async def runtime(database_urls: DatabaseUrls, client: Any) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(**database.connection_params(database_urls.app))
    yield conn
    await conn.close()


async def test_single_and_batched_checks_answer_as_the_rules_do(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime: asyncpg.Connection
) -> None:
    unit = await make_unit(org, "Lab")
    admin = uuid.UUID((await make_member(org, roles=["admin"]))["id"])
    member = uuid.UUID((await make_member(org, unit=unit["id"]))["id"])
    products = [uuid.UUID((await make_product(org))["id"]) for _ in range(2)]
    shapes = palette(str(products[0]), str(products[1]))
    questions = [(c, p) for c in ALL for p in products]
    scenarios = [()] + [(s,) for s in shapes] + list(itertools.combinations(shapes, 2))
    checked = 0
    for scenario in scenarios:
        await owner_conn.execute("DELETE FROM access_log WHERE tenant_id = $1", org.id)
        await owner_conn.execute("DELETE FROM access_grants WHERE tenant_id = $1", org.id)
        grants = []
        for shape in scenario:
            grant_id = uuid.uuid4()
            await owner_conn.execute(
                "INSERT INTO access_grants (id, tenant_id, created_at, updated_at, admin_id, "
                "member_id, unit_id, categories, all_products, product_ids, justification, "
                "duration_hours, emergency, status, requested_by, requested_by_display, starts_at, "
                "ends_at, review_required) VALUES ($1, $2, now(), now(), $3, $4, $5, $6, $7, $8, "
                "'a justified test of the rules', 1, false, $9, 'tests', 'tests', $10, $11, false)",
                grant_id, org.id, admin,
                None if shape["unit"] else member,
                uuid.UUID(unit["id"]) if shape["unit"] else None,
                json.dumps(shape["categories"]), shape["all_products"],
                json.dumps(shape["product_ids"]), shape["status"].value,
                NOW - timedelta(days=1) if shape["ends_at"] else None, shape["ends_at"],
            )  # fmt: skip
            grants.append(
                CheckedGrant(
                    grant_id, shape["status"], shape["ends_at"], frozenset(shape["categories"]),
                    shape["all_products"], frozenset(shape["product_ids"]),
                )
            )  # fmt: skip
        expected = [answer_check(grants, c, p, datetime.now(UTC)) for c, p in questions]

        singles = []
        for category, product in questions:
            row = await runtime.fetchrow(
                CHECK_SQL, org.id, admin, None, member, product, category, "tests"
            )
            singles.append((row["outcome"], row["grant_id"]))
        rows = await runtime.fetch(
            BATCH_SQL, org.id, [admin] * len(questions), [None] * len(questions),
            [member] * len(questions), [p for _, p in questions], [c for c, _ in questions],
            ["tests"] * len(questions),
        )  # fmt: skip
        batched = [(r["outcome"], r["grant_id"]) for r in rows]

        assert singles == expected, scenario
        assert batched == expected, scenario
        assert [r["item"] for r in rows] == list(range(1, len(questions) + 1))
        logged = await owner_conn.fetch(
            "SELECT id, allowed, reason, grant_id FROM access_log WHERE tenant_id = $1 ORDER BY id",
            org.id,
        )
        assert [(r["reason"] or "allowed", r["grant_id"]) for r in logged] == expected * 2
        assert {r["log_id"] for r in rows} == {r["id"] for r in logged[len(questions) :]}
        checked += 2 * len(questions)
    assert checked == 2 * 8 * (1 + 8 + 28)


async def test_batched_checks_naming_unknown_people_or_products_record_only_the_others(
    org: OrgHandle, owner_conn: asyncpg.Connection, runtime: asyncpg.Connection
) -> None:
    admin = await make_member(org, roles=["admin"])
    member = uuid.UUID((await make_member(org))["id"])
    product = uuid.UUID((await make_product(org))["id"])
    nobody = uuid.uuid4()
    rows = await runtime.fetch(
        BATCH_SQL, org.id,
        [uuid.UUID(admin["id"]), None, nobody, uuid.UUID(admin["id"]), uuid.UUID(admin["id"])],
        [None, admin["email"], None, None, None],
        [member, member, member, nobody, member],
        [product, product, product, product, nobody],
        ["files"] * 5, ["tests"] * 5,
    )  # fmt: skip
    assert [r["outcome"] for r in rows] == [
        "no_grant",
        "no_grant",
        "unknown_admin",
        "unknown_member",
        "unknown_product",
    ]
    assert [r["log_id"] is not None for r in rows] == [True, True, False, False, False]
    assert await owner_conn.fetchval("SELECT count(*) FROM access_log") == 2
