"""The admin console, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.web.console import (
    access,
    audit,
    departures,
    domains,
    home,
    identity,
    jobs,
    members,
    policies,
    privacy,
    provisioning,
    settings,
    sign_ins,
    structure,
    webhooks,
)
from app.web.pages import Web


def routes(web: Web) -> list[BaseRoute]:
    return [
        *home.routes(web),
        *members.routes(web),
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
    ]
