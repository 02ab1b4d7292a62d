"""Exports for access and portability requests: products asked by signed webhook, their
parts uploaded through the API (each product for itself), and the ZIP built by a job with
Tenantry's own data, the products' parts and a README. On the real database, with a real
webhook receiver."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tenants import db
from tenants.actors import system_actor
from tenants.requests import fulfilment
from tenants.requests.models import PrivacyExport
from tests.conftest import OrgHandle, make_group, make_member, make_product
from tests.departures.support import make_items
from tests.requests.support import product_client_headers, run_jobs, submit
from tests.support.api_schema import assert_problem, error_fields
from tests.support.webhook_receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def receiver2() -> AsyncIterator[Receiver]:
    """A second product's endpoint (each product signs with its own secret)."""
    async with running_receiver() as r:
        yield r


async def hooked_product(org: OrgHandle, receiver: Receiver, name: str) -> dict[str, Any]:
    product = await make_product(org, name=name, key=name.lower().replace(" ", "-"))
    hook = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": receiver.url})
    assert hook.status_code == 200, hook.text
    receiver.secret = hook.json()["secret"]
    return product


async def give_account(org: OrgHandle, member: dict[str, Any], product: dict[str, Any]) -> None:
    response = await org.post(
        "/v1/product-accounts", {"member_id": member["id"], "product_id": product["id"]}
    )
    assert response.status_code == 201, response.text


async def bundle_of(org: OrgHandle, request_id: str) -> zipfile.ZipFile:
    async with db.tenant_transaction(org.id):
        export = await PrivacyExport.get(request_id=request_id)
    assert export.bundle is not None, export.status
    return zipfile.ZipFile(io.BytesIO(bytes(export.bundle)))


def doc(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


async def test_an_access_request_is_answered_with_a_zip_of_tenantrys_and_the_products_data(
    org: OrgHandle, receiver: Receiver, receiver2: Receiver
) -> None:
    mia, other = await make_member(org, name="Mia Member"), await make_member(org)
    group = await make_group(org, name="Choir")
    await org.put(f"/v1/groups/{group['id']}/members/{mia['id']}")
    drive = await hooked_product(org, receiver, "Drive")
    mail_product = await hooked_product(org, receiver2, "Mail")
    quiet = await make_product(org, name="Quiet", key="quiet")  # no webhook: not asked
    for product in (drive, mail_product, quiet):
        await give_account(org, mia, product)
    await make_items(org, mia["id"], drive["id"], 40, prefix="doc")
    await make_items(org, mia["id"], mail_product["id"], 10, kind="personal", prefix="msg")
    await make_items(org, other["id"], drive["id"], 5, prefix="not-mia")
    choice = await org.post(
        f"/v1/members/{mia['id']}/choices", {"setting": "cookies.analytics", "value": False}
    )
    assert choice.status_code == 200, choice.text
    request = await submit(org, mia, "access")

    started = await org.post(f"/v1/privacy-requests/{request['id']}/export")
    assert started.status_code == 202, started.text
    assert sorted(started.json()["expected_product_ids"]) == sorted(
        [drive["id"], mail_product["id"]]
    )
    await run_jobs()  # webhooks go out; the bundle waits for the products

    asked = [
        r
        for r in receiver.received + receiver2.received
        if r.topic == "privacy_request.export_requested"
    ]
    assert len(asked) == 2 and asked[0].data["member_id"] == mia["id"]
    upload_path = str(asked[0].data["upload_path"])
    drive_headers = await product_client_headers(org, drive)
    foreign = await org.client.put(
        upload_path,
        json={"product_id": mail_product["id"], "data": {"x": 1}},
        headers=drive_headers,
    )
    assert "product_id" in error_fields(assert_problem(foreign, 403))
    uploaded = await org.client.put(
        upload_path, json={"data": {"files": [{"name": "Q3 plan.docx"}]}}, headers=drive_headers
    )
    assert uploaded.status_code == 200, uploaded.text
    await run_jobs()
    assert (await org.get(f"/v1/privacy-requests/{request['id']}/export")).json()["status"] == (
        "collecting"
    )
    mail_headers = await product_client_headers(org, mail_product)
    await org.client.put(upload_path, json={"data": [{"subject": "Hello"}]}, headers=mail_headers)
    await run_jobs()

    export = (await org.get(f"/v1/privacy-requests/{request['id']}/export")).json()
    assert export["status"] == "ready" and export["expires_at"]
    archive = await bundle_of(org, request["id"])
    assert archive.namelist() == [
        "README.txt",
        "index.json",
        "profile.json",
        "groups.json",
        "product_accounts.json",
        "settings.json",
        "content_items.json",
        "data_access.json",
        "privacy_requests.json",
        "audit_events.json",
        "sessions.json",
        "sign_ins.json",
        "emails.json",
        "scim.json",
        "departures.json",
        "products/drive.json",
        "products/mail.json",
    ]
    listed = doc(archive, "index.json")
    assert [f["name"] for f in listed["files"]] == archive.namelist()[2:]
    assert {"sessions", "mail_messages"} <= {t for f in listed["files"] for t in f["sources"]}
    assert [p["answered"] for p in listed["products"]] == [True, True]
    [own] = doc(archive, "privacy_requests.json")
    # The request's own timeline, without the internal notes.
    assert [e["what"] for e in own["timeline"]][:3] == ["received", "status", "export_requested"]
    assert any(mia["email"] in m["to"] for m in doc(archive, "emails.json"))
    assert doc(archive, "profile.json")["email"] == mia["email"]
    assert [g["name"] for g in doc(archive, "groups.json")] == ["Choir"]
    assert sorted(a["product_key"] for a in doc(archive, "product_accounts.json")) == [
        "drive",
        "mail",
        "quiet",
    ]
    items = doc(archive, "content_items.json")
    assert len(items) == 50 and not [i for i in items if i["external_id"].startswith("not-mia")]
    assert doc(archive, "settings.json")["your_choices"] == {"cookies.analytics": False}
    assert doc(archive, "settings.json")["effective"]["cookies.analytics"]["value"] is False
    assert [r["id"] for r in doc(archive, "privacy_requests.json")] == [request["id"]]
    assert any(e["action"] == "member.created" for e in doc(archive, "audit_events.json"))
    assert doc(archive, "products/drive.json") == {"files": [{"name": "Q3 plan.docx"}]}
    readme = archive.read("README.txt").decode()
    assert f"Your data held by {org.slug.title()}" in readme
    assert mia["email"] in readme and "products/mail.json  Mail" in readme
    assert "content_items.json" in readme and "had not sent it" not in readme
    detail = (await org.get(f"/v1/privacy-requests/{request['id']}")).json()
    assert [e["kind"] for e in detail["timeline"]][-1] == "export_ready"


async def test_a_product_that_does_not_answer_in_time_is_named_in_the_readme(
    org: OrgHandle, receiver: Receiver
) -> None:
    mia = await make_member(org)
    silent = await hooked_product(org, receiver, "Silent Product")
    await give_account(org, mia, silent)
    request = await submit(org, mia, "portability")
    await org.post(f"/v1/privacy-requests/{request['id']}/export")

    await run_jobs()
    assert (await org.get(f"/v1/privacy-requests/{request['id']}/export")).json()["status"] == (
        "collecting"
    )
    await run_jobs(ahead=timedelta(days=4))

    archive = await bundle_of(org, request["id"])
    assert not [n for n in archive.namelist() if n.startswith("products/")]
    readme = archive.read("README.txt").decode()
    assert "had not sent it" in readme and "Silent Product" in readme
    # What else Art. 15 says the person is told: who decides, the source, the recipients
    # (the products they have an account in), how long, automated decisions, their rights.
    about = readme.split("About this data (GDPR Art. 15)", 1)[1]
    assert "decides why and how this data is used" in about
    assert "Where it comes from:" in about
    assert "Who receives it:" in about and "Silent Product." in about
    assert "emails after 90 days" in about and "the sign-in log after 400 days" in about
    assert "Automated decisions: none" in about
    assert "supervisory authority" in about and "restrict or object" in about
    late = await org.put(
        f"/v1/privacy-requests/{request['id']}/export/parts",
        json={"product_id": silent["id"], "data": {}},
    )
    assert_problem(late, 409)


async def test_without_products_to_ask_the_export_is_built_at_once_and_expires_later(
    org: OrgHandle,
) -> None:
    mia = await make_member(org)
    request = await submit(org, mia, "access")
    first = await org.post(f"/v1/privacy-requests/{request['id']}/export")
    again = await org.post(f"/v1/privacy-requests/{request['id']}/export")
    assert first.json()["id"] == again.json()["id"]
    # Starting the export is work on the request: the member sees it in progress, once.
    shown = (await org.get(f"/v1/privacy-requests/{request['id']}")).json()
    assert shown["status"] == "in_progress"

    await run_jobs()
    assert (await bundle_of(org, request["id"])).namelist()[0] == "README.txt"
    await run_jobs(ahead=timedelta(days=8))

    export = (await org.get(f"/v1/privacy-requests/{request['id']}/export")).json()
    assert export["status"] == "expired"
    async with db.tenant_transaction(org.id):
        stored = await PrivacyExport.get(id=export["id"])
    assert stored.bundle is None


async def test_an_upload_that_is_not_json_data_is_refused_naming_the_field(org: OrgHandle) -> None:
    mia, product = await make_member(org), await make_product(org)
    request = await submit(org, mia, "access")
    await org.post(f"/v1/privacy-requests/{request['id']}/export")
    url = f"/v1/privacy-requests/{request['id']}/export/parts"

    no_product = await org.put(url, json={"data": {"a": 1}})
    not_data = await org.put(url, json={"product_id": product["id"], "data": "text"})
    unknown = await org.put(url, json={"product_id": str(uuid.uuid4()), "data": {}})

    assert "product_id" in error_fields(assert_problem(no_product, 422))
    assert any(f.startswith("data") for f in error_fields(assert_problem(not_data, 422)))
    assert "product_id" in error_fields(assert_problem(unknown, 422))


async def test_collecting_an_export_of_a_closed_request_is_refused(org: OrgHandle) -> None:
    mia = await make_member(org)
    request = await submit(org, mia, "access")
    await org.post(f"/v1/privacy-requests/{request['id']}/answer", {"answer": "Nothing held."})

    assert_problem(await org.post(f"/v1/privacy-requests/{request['id']}/export"), 409)
    async with db.tenant_transaction(org.id):
        assert await fulfilment.build_export(uuid.uuid4(), actor=system_actor("t")) is None
