"""The admin and product API under ``/v1``."""

from __future__ import annotations

from app.api import ApiRouter
from app.v1 import (
    access,
    access_checks,
    audit,
    claims,
    content,
    departures,
    groups,
    identity,
    jobs,
    mail,
    members,
    organisation,
    policy,
    privacy_requests,
    products,
    settings,
    signals,
    sso,
    units,
    webhooks,
)

ROUTERS: list[ApiRouter] = [
    products.accounts,
    organisation.router,
    units.router,
    groups.router,
    members.router,
    products.router,
    audit.router,
    sso.router,
    identity.router,
    signals.router,
    claims.router,
    settings.router,
    policy.router,
    departures.router,
    jobs.router,
    content.router,
    content.members,
    webhooks.router,
    webhooks.deliveries,
    access.router,
    access_checks.router,
    privacy_requests.router,
    privacy_requests.policy_router,
    mail.router,
]
