"""The tortoise configuration, in one place for the service, the CLI and the tortoise CLI.

``TORTOISE_ORM`` exists for ``tortoise makemigrations`` (named in pyproject.toml); it writes
migration files from the models without connecting. Everything that connects builds its
own configuration with ``tortoise_config``.
"""

from __future__ import annotations

from typing import Any

MODEL_MODULES: dict[str, list[str]] = {
    "tenants": [
        "tenants.organisations.models",
        "tenants.units.models",
        "tenants.groups.models",
        "tenants.members.models",
        "tenants.products.models",
        "tenants.tokens.models",
        "tenants.audit.models",
        "tenants.sso.models",
        "tenants.sessions.models",
        "tenants.clients.models",
        "tenants.policy.models",
        "tenants.outbox.models",
        "tenants.content.models",
        "tenants.departures.models",
        "tenants.jobs.models",
        "tenants.webhooks.models",
        "tenants.access.models",
        "tenants.requests.models",
        "tenants.mail.models",
        "tenants.identity.models",
        "tenants.signals.models",
        "tenants.scim.models",
        "tenants.domains.models",
        "tenants.signins.models",
        "tenants.privacy.models",
        "tenants.reviews.models",
    ],
}


def tortoise_config(connection: str | dict[str, Any]) -> dict[str, Any]:
    return {
        "connections": {"default": connection},
        "apps": {
            label: {
                "models": modules,
                "migrations": f"migrations.{label}",
                "default_connection": "default",
            }
            for label, modules in MODEL_MODULES.items()
        },
        "use_tz": True,
        "timezone": "UTC",
    }


TORTOISE_ORM = tortoise_config("postgres://tenantry_owner@127.0.0.1:5432/tenantry")
