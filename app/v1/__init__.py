"""The admin and product API under ``/v1``."""

from __future__ import annotations

from app.api import ApiRouter
from app.v1 import audit, departures, groups, members, organisation, policy, products, settings, sso, units

ROUTERS: list[ApiRouter] = [
    products.accounts,
    organisation.router,
    units.router,
    groups.router,
    members.router,
    products.router,
    audit.router,
    sso.router,
    settings.router,
    policy.router,
    departures.router,
]
