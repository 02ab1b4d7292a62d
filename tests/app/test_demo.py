"""The demo seed the README's first command runs: organisations with content to plan
departures on, one departure under way, and repeatable (a second start seeds nothing)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from app.demo import DEMO_ORGANISATIONS, seed_demo


async def test_the_demo_seeds_content_and_a_departure_and_can_run_twice(
    client: object, owner_conn: asyncpg.Connection
) -> None:
    first = await seed_demo()
    assert [c.slug for c in first] == [spec.slug for spec in DEMO_ORGANISATIONS]
    counts = await owner_conn.fetchrow(
        "SELECT (SELECT count(*) FROM organisations) AS orgs,"
        " (SELECT count(*) FROM content_items) AS items,"
        " (SELECT count(*) FROM departures WHERE status = 'running') AS departures,"
        " (SELECT count(*) FROM members WHERE status = 'departing') AS departing"
    )
    assert counts["orgs"] == 2
    assert counts["items"] > 1000
    # Items only where the member has an account (a leaving page listed Classroom items
    # of a member without a Classroom account).
    stray = await owner_conn.fetchval(
        "SELECT count(*) FROM content_items c WHERE NOT EXISTS (SELECT 1 FROM product_accounts a"
        " WHERE a.tenant_id = c.tenant_id AND a.product_id = c.product_id"
        " AND a.member_id = c.member_id)"
    )
    assert stray == 0
    assert counts["departures"] == counts["departing"] == 2
    # The example domains route at once, marked as vouched for by the seed, not DNS.
    domains = await owner_conn.fetch("SELECT name, status, proof FROM domains ORDER BY name")
    assert [tuple(d) for d in domains] == sorted(
        (spec.domain, "verified", "seed") for spec in DEMO_ORGANISATIONS
    )
    # A scheduled policy change and an open access review, for the admin to find.
    governance = await owner_conn.fetchrow(
        "SELECT (SELECT count(*) FROM policy_rules WHERE effective_from > now()) AS scheduled,"
        " (SELECT count(*) FROM access_reviews WHERE status = 'open') AS reviews,"
        " (SELECT count(*) FROM access_review_items) AS items"
    )
    assert (governance["scheduled"], governance["reviews"]) == (2, 2)
    assert governance["items"] >= 2 * 5  # the owner and the four printed roles, per org
    second = await seed_demo()
    assert len(second) == 2
    assert await owner_conn.fetchval("SELECT count(*) FROM content_items") == counts["items"]


async def test_the_demo_prints_every_role_and_its_departure_runs_within_minutes(
    client: object, owner_conn: asyncpg.Connection
) -> None:
    credentials = await seed_demo()
    for c in credentials:
        assert set(c.roles) == {"admin", "privacy_officer", "helpdesk", "auditor"}
        assert len({c.admin_email, c.member_email, *c.roles.values()}) == 6
    soon = await owner_conn.fetch(
        "SELECT j.run_at - now() AS wait FROM departures d JOIN jobs j "
        "ON j.tenant_id = d.tenant_id AND j.key = 'departure:' || d.id || ':suspend' "
        "WHERE d.status = 'running'"
    )
    assert len(soon) == 2 and all(row["wait"] <= timedelta(minutes=2) for row in soon)
    purge = await owner_conn.fetch(
        "SELECT purge_at - now() AS wait, last_day = (now() AT TIME ZONE 'UTC')::date AS today"
        " FROM departures"
    )
    assert all(row["wait"] <= timedelta(minutes=6) for row in purge)
    assert all(row["today"] for row in purge)  # hurried, its last day is today
    pending = await owner_conn.fetchval(
        "SELECT count(*) FROM access_grants WHERE status = 'requested'"
    )
    assert pending == 2  # one per organisation, for its privacy officer
