"""Diagnostic-data samples: products declare, per value of their enum and bool settings,
what they send at it; the catalogue returns them, versioned with it; bad samples are 422
naming the field, never stored and never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OrgHandle, make_product

LEVEL = {
    "key": "chat.telemetry",
    "type": "enum",
    "default": "basic",
    "title": "Chat telemetry",
    "allowed": ["none", "basic", "full"],
    "samples": {
        "full": {"document": {"event": "message.sent", "length": 42}, "description": "Every send."},
        "none": {"document": {}, "description": "Nothing at all."},
    },
}


async def declare(org: OrgHandle, product: dict[str, Any], *settings: dict[str, Any]) -> Any:
    return await org.put(
        "/v1/settings/declared", json={"product_id": product["id"], "settings": list(settings)}
    )


def in_catalogue(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in body["settings"] if s["key"] == key)


async def test_declared_samples_come_back_in_the_catalogue_and_change_its_version(
    org: OrgHandle,
) -> None:
    product = await make_product(org, key="chat")
    before = (await org.get("/v1/settings/catalogue")).json()
    builtin = in_catalogue(before, "diagnostics.level")["samples"]
    assert list(builtin) == ["off", "required", "optional"]
    assert builtin["required"]["description"] and builtin["off"]["document"] == {}
    toggle = {
        "key": "chat.typing",
        "type": "bool",
        "default": False,
        "title": "Typing",
        "samples": {"true": {"document": {"typing": True}, "description": "That you type."}},
    }
    declared = await declare(org, product, LEVEL, toggle)
    assert declared.status_code == 200, declared.text
    catalogue = (await org.get("/v1/settings/catalogue")).json()
    samples = in_catalogue(catalogue, "chat.telemetry")["samples"]
    assert list(samples) == ["none", "full"]  # in the order of the setting's values
    assert samples["full"] == {
        "document": {"event": "message.sent", "length": 42},
        "description": "Every send.",
    }
    assert in_catalogue(catalogue, "chat.typing")["samples"]["true"]["document"] == {"typing": True}
    changed = {**LEVEL, "samples": {"none": {"document": {}, "description": "Nothing, ever."}}}
    assert (await declare(org, product, changed)).status_code == 200
    after = (await org.get("/v1/settings/catalogue")).json()
    assert len({before["version"], catalogue["version"], after["version"]}) == 3
    assert in_catalogue(after, "chat.telemetry")["samples"] == {
        "none": {"document": {}, "description": "Nothing, ever."}
    }


@pytest.mark.parametrize(
    ("samples", "field"),
    [
        ({"loud": {"document": {}, "description": "d"}}, "settings[0].samples.loud"),
        (
            {"full": {"document": {"a": "x" * 9000}, "description": "d"}},
            "settings[0].samples.full.document",
        ),
        ({"full": {"document": [1], "description": "d"}}, "settings[0].samples.full.document"),
        (
            {"full": {"document": {"a": "\u0000"}, "description": "d"}},
            "settings[0].samples.full.document",
        ),
        ({"full": {"document": {}, "description": ""}}, "settings[0].samples.full.description"),
        ({"full": {"document": {}, "description": "   "}}, "settings[0].samples.full.description"),
        (
            {"full": {"document": {}, "description": "x" * 1001}},
            "settings[0].samples.full.description",
        ),
        (
            {"full": {"document": {}, "description": "bad \u0007 bell"}},
            "settings[0].samples.full.description",
        ),
        ({"full": {"description": "d"}}, "settings[0].samples.full.document"),
    ],
)
async def test_a_bad_sample_is_refused_naming_its_field(
    org: OrgHandle, samples: dict[str, Any], field: str
) -> None:
    product = await make_product(org)
    refused = await declare(org, product, {**LEVEL, "samples": samples})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    # The field itself, or a place inside it (a NUL is refused where it sits in the document).
    fields = [f["field"] for f in refused.json()["errors"]]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), refused.json()
    catalogue = (await org.get("/v1/settings/catalogue")).json()
    assert "chat.telemetry" not in {s["key"] for s in catalogue["settings"]}


async def test_settings_without_values_take_no_samples(org: OrgHandle) -> None:
    product = await make_product(org)
    count = {
        "key": "chat.history_days",
        "type": "int",
        "default": 30,
        "minimum": 1,
        "maximum": 90,
        "title": "History",
        "samples": {"30": {"document": {}, "description": "d"}},
    }
    refused = await declare(org, product, count)
    assert refused.status_code == 422
    assert "settings[0].samples.30" in [f["field"] for f in refused.json()["errors"]]
