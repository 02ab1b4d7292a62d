"""The admin console, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.web.console import audit, home, members, policies, settings, structure
from app.web.pages import Web


def routes(web: Web) -> list[BaseRoute]:
    return [
        *home.routes(web),
        *members.routes(web),
        *structure.routes(web),
        *policies.routes(web),
        *settings.routes(web),
        *audit.routes(web),
    ]
