"""The dialect corpus: the SCIM requests Microsoft Entra ID and Okta send, as their
published guides show them (``entra.json``, ``okta.json``), and a replay against the
running server.

Each sequence names the guide (``source``) and the section it was written from; resource
ids in the guides are replaced by ``{{placeholders}}`` the replay fills with ids this
server issued (``save`` keeps the id of a created resource under a name).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import httpx

from tests.scim.conftest import Scim

HERE = Path(__file__).parent


@functools.cache
def corpus(idp: str) -> dict[str, Any]:
    """The corpus of ``idp`` (``entra`` or ``okta``)."""
    loaded: dict[str, Any] = json.loads((HERE / f"{idp}.json").read_text())
    return loaded


def sequence_source(idp: str, name: str) -> str:
    """The URL of the guide sequence ``name`` was written from."""
    found = corpus(idp)
    return str(found["sources"][found["sequences"][name]["source"]])


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, found in ids.items():
            value = value.replace("{{" + key + "}}", found)
        assert "{{" not in value, f"no id for a placeholder in {value!r}"
        return value
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    return value


async def replay(scim: Scim, idp: str, name: str, ids: dict[str, str]) -> list[httpx.Response]:
    """Send the sequence ``name`` of ``idp`` in order, checking each answer's status (and
    the top-level values a step ``expect``s); ``ids`` gains the ids of created resources.
    Every answer, error or not, must be SCIM JSON."""
    steps = corpus(idp)["sequences"][name]["steps"]
    answers = []
    for number, step in enumerate(steps, 1):
        method, path = step["request"].split(" ", 1)
        response = await scim.client.request(
            method,
            "/scim/v2" + _filled(path, ids),
            params=_filled(step.get("query"), ids),
            json=_filled(step["body"], ids) if "body" in step else None,
            headers=scim.headers,
        )
        where = f"{idp} {name} step {number} ({step['request']})"
        assert response.status_code == step["status"], f"{where}: {response.text}"
        if response.status_code != 204:
            assert response.headers["content-type"].startswith("application/scim+json"), where
        body = response.json() if response.content else {}
        for key, wanted in _filled(step.get("expect", {}), ids).items():
            assert body.get(key) == wanted, f"{where}: {key} is {body.get(key)!r}"
        if "save" in step:
            ids[step["save"]] = body["id"]
        answers.append(response)
    return answers
