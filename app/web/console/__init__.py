"""The admin console, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.web.console import (
    access,
    api_tokens,
    audit,
    departures,
    domains,
    groups,
    holds,
    home,
    identity,
    jobs,
    lookups,
    member_bulk,
    member_forms,
    members,
    policies,
    privacy,
    provisioning,
    reviews,
    settings,
    sign_ins,
    structure,
    webhooks,
)
from app.web.pages import Web


def routes(web: Web) -> list[BaseRoute]:
    return [
        *home.routes(web),
        *holds.routes(web),
        *lookups.routes(web),
        *member_bulk.routes(web),
        *member_forms.routes(web),
        *members.routes(web),
        *groups.routes(web),
        *structure.routes(web),
        *policies.routes(web),
        *settings.routes(web),
        *identity.routes(web),
        *audit.routes(web),
        *sign_ins.routes(web),
        *domains.routes(web),
        *departures.routes(web),
        *jobs.routes(web),
        *webhooks.routes(web),
        *access.routes(web),
        *privacy.routes(web),
        *provisioning.routes(web),
        *api_tokens.routes(web),
        *reviews.routes(web),
    ]
