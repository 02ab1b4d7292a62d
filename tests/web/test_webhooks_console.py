"""A product's webhooks in the console, in process: the address form, the secret shown
once, rotation, the delivery log with its badges and live refresh, and the retry button
of a dead delivery; refusals beside the form, CSRF on every form, roles."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.webhooks import service as webhooks
from tests.conftest import OrgHandle, make_member, make_product, row_counts
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    set_local_sign_in,
    set_password,
    text_of,
)

SECRET = re.compile(r'<code class="secret" id="new-secret">(whsec_[^<]+)</code>')


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def person(org: OrgHandle, role: str) -> dict[str, Any]:
    made = await make_member(org, name=f"{role.title()} Person", roles=[role])
    await set_password(org.id, made["id"], PASSWORD)
    return made


async def signed_in(browser: WebClient, org: OrgHandle, role: str = "admin") -> str:
    who = await person(org, role)
    return await browser.signed_in(org.slug, who["email"])


async def test_an_admin_sets_the_address_sees_the_secret_once_and_rotates_it(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    org = local_org
    product = await make_product(org, name="Drive")
    page_url = f"/console/products/{product['id']}/webhooks"
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        listing = await browser.get("/console/products")
        assert f'href="{page_url}"' in listing.text
        assert "Webhooks to this product" not in listing.text

        saved = await browser.post(f"{page_url}/url", {"csrf": csrf, "url": "https://hooks.example.com/in"})
        assert saved.status_code == 200, saved.text
        [first] = SECRET.findall(saved.text)
        assert 'data-copy="new-secret"' in saved.text and "/static/copy.js" in saved.text
        assert "shown only this once" in text_of(saved.text)
        again = await browser.get(page_url)
        assert first not in again.text and 'class="badge wh-on"' in again.text
        assert 'value="https://hooks.example.com/in"' in again.text

        rotated = await browser.post(f"{page_url}/rotate", {"csrf": csrf})
        [second] = SECRET.findall(rotated.text)
        assert second != first
        assert "The previous secret keeps signing too until" in text_of(rotated.text)

        before = await row_counts(owner_conn)
        refused = await browser.post(f"{page_url}/url", {"csrf": csrf, "url": "http://hooks.example.com/"})
        assert refused.status_code == 422
        assert "Not saved: this address must use https://" in text_of(refused.text)
        assert 'value="http://hooks.example.com/"' in refused.text
        forged = await browser.post(f"{page_url}/rotate", {"csrf": "not-the-token"})
        assert forged.status_code == 403
        assert await row_counts(owner_conn) == before

        asked = await browser.post(f"{page_url}/clear", {"csrf": csrf})
        assert asked.status_code == 200, asked.text[:500]
        assert "stops being told of changes" in text_of(asked.text)
        assert 'class="badge wh-off"' not in (await browser.get(page_url)).text, "asking changes nothing"
        off = await browser.post(f"{page_url}/clear", {"csrf": csrf, "confirmed": "1"})
        assert off.status_code == 303
        assert 'class="badge wh-off"' in (await browser.get(page_url)).text
    assert len(await audit_events(owner_conn, org.id, "product.webhook_secret_rotated")) == 1


async def test_rotate_is_offered_only_while_webhooks_are_on_and_refused_otherwise(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    org = local_org
    product = await make_product(org, name="Drive")
    page_url = f"/console/products/{product['id']}/webhooks"
    rotate = re.compile(r'<button type="submit" class="secondary"( disabled[^>]*)?>Rotate secret')
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        # Never set up: nothing to rotate; the button is there but disabled, saying why.
        never = await browser.get(page_url)
        assert rotate.search(never.text).group(1) == ' disabled aria-describedby="rotate-off"'
        assert "Rotating is off: there is no signing secret yet. One is made, and shown once, " in (
            text_of(never.text)
        )
        before = await row_counts(owner_conn)
        refused = await browser.post(
            f"{page_url}/rotate", {"csrf": csrf}, headers={"referer": f"http://tenantry.test{page_url}"}
        )
        assert refused.status_code == 303 and refused.headers["location"] == page_url
        shown = await browser.get(page_url)
        assert "Not done: there is no signing secret yet" in text_of(shown.text)
        assert not SECRET.findall(shown.text)
        assert await row_counts(owner_conn) == before

        # Turned off after use: the secret is kept, but rotating it signs nothing.
        await browser.post(f"{page_url}/url", {"csrf": csrf, "url": "https://hooks.example.com/in"})
        await browser.post(f"{page_url}/clear", {"csrf": csrf, "confirmed": "1"})
        off = await browser.get(page_url)
        assert rotate.search(off.text).group(1) is not None
        assert "webhooks are off, so the secret signs nothing. Save an address to turn them on" in (
            text_of(off.text)
        )
        secret_before = await owner_conn.fetchval(
            "SELECT webhook_secret FROM products WHERE id = $1", uuid.UUID(product["id"])
        )
        refused = await browser.post(f"{page_url}/rotate", {"csrf": csrf})
        assert refused.status_code == 303
        assert "Not done: webhooks are off" in text_of((await browser.get(page_url)).text)
        assert secret_before == await owner_conn.fetchval(
            "SELECT webhook_secret FROM products WHERE id = $1", uuid.UUID(product["id"])
        )
        assert await audit_events(owner_conn, org.id, "product.webhook_secret_rotated") == []

        # Back on: offered and done.
        await browser.post(f"{page_url}/url", {"csrf": csrf, "url": "https://hooks.example.com/in"})
        on = await browser.get(page_url)
        assert rotate.search(on.text).group(1) is None and 'id="rotate-off"' not in on.text
        rotated = await browser.post(f"{page_url}/rotate", {"csrf": csrf})
        assert rotated.status_code == 200 and len(SECRET.findall(rotated.text)) == 1
    # The API still rotates while off (a product fearing a leak before webhooks come back).
    await org.delete(f"/v1/products/{product['id']}/webhook")
    via_api = await org.post(f"/v1/products/{product['id']}/webhook/rotate-secret")
    assert via_api.status_code == 200, via_api.text
    assert len(await audit_events(owner_conn, org.id, "product.webhook_secret_rotated")) == 2


async def test_the_log_shows_each_delivery_with_its_badge_and_a_dead_one_can_be_retried(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    org = local_org
    product = await make_product(org, name="Mail")
    page_url = f"/console/products/{product['id']}/webhooks"
    assert (await org.put(f"/v1/products/{product['id']}/webhook",
                          json={"url": "https://hooks.example.com/mail"})).status_code == 200
    async with db.tenant_transaction(org.id):
        await webhooks.publish("member.departing", {}, key="evt-dead")
        await webhooks.publish("policy.changed", {}, key="evt-pending")
    dead_id = await owner_conn.fetchval(
        "UPDATE webhook_deliveries SET status = 'dead', attempts = 15, last_status_code = 503, "
        "last_error = 'HTTP 503 Service Unavailable' WHERE idempotency_key = 'evt-dead' RETURNING id"
    )
    await owner_conn.execute("UPDATE jobs SET status = 'dead' WHERE key = $1", f"webhook:{dead_id}")

    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        page = await browser.get(page_url)
        assert page.status_code == 200
        assert f'id="delivery-{dead_id}"' in page.text
        assert 'class="badge wh-dead"' in page.text and 'class="badge wh-pending"' in page.text
        assert "HTTP 503 Service Unavailable" in page.text
        assert page.text.count("/retry") == 1, "only the dead delivery has a retry button"
        assert 'hx-trigger="every 3s"' in page.text, "the log refreshes while one is pending"
        only_dead = await browser.get(page_url, params={"status": "dead"})
        assert "evt-pending" not in only_dead.text and "evt-dead" in only_dead.text
        fragment = await browser.get(f"{page_url}/log")
        assert "<html" not in fragment.text and 'id="webhook-log"' in fragment.text

        retried = await browser.post(f"/console/webhook-deliveries/{dead_id}/retry", {"csrf": csrf})
        assert retried.status_code == 303 and retried.headers["location"] == page_url
        assert "queued again" in text_of((await browser.get(page_url)).text)
    status = await owner_conn.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", dead_id)
    job = await owner_conn.fetchval("SELECT status FROM jobs WHERE key = $1", f"webhook:{dead_id}")
    assert (status, job) == ("pending", "queued")


async def test_an_auditor_reads_the_log_but_has_no_forms_and_cannot_post(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    org = local_org
    product = await make_product(org)
    page_url = f"/console/products/{product['id']}/webhooks"
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, role="auditor")
        page = await browser.get(page_url)
        assert page.status_code == 200
        assert "Rotate secret" not in page.text and "<fieldset disabled" in page.text
        before = await row_counts(owner_conn)
        refused = await browser.post(f"{page_url}/rotate", {"csrf": csrf})
        assert refused.status_code == 403
        assert await row_counts(owner_conn) == before
        missing = await browser.get(f"/console/products/{uuid.uuid4()}/webhooks")
        assert missing.status_code == 404
