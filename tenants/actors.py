"""Who is acting, recorded on every audit event."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    API_TOKEN = "api_token"
    MEMBER = "member"
    PRODUCT = "product"
    IDENTITY_PROVIDER = "identity_provider"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """The author of a write and where it came from.

    ``request_id`` and ``client_addr`` travel with the actor because the audit event needs
    them and every write already takes the actor.
    """

    kind: ActorKind
    id: str
    display: str
    request_id: str | None = None
    client_addr: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind.value}:{self.id}"


#: How the service's own actors read where people see who did something ("Created by the
#: demo data", not "demo-seed"); their ids stay in references and filters.
SYSTEM_NAMES: dict[str, str] = {
    "cli": "the command line (tenantry)",
    "demo-seed": "the demo data",
    "access-review": "an access review at its due date",
    "retention": "the retention schedule",
    "privacy-export": "the privacy export",
    "privacy-request-reminder": "the privacy request reminders",
    "policy-schedule": "a scheduled policy change",
    "identity-sync": "the identity provider sync",
    "domain-recheck": "the domain check",
    "departure-worker": "the departure worker",
    "audit-verification": "the audit chain verification",
}


def system_actor(what: str, *, request_id: str | None = None) -> Actor:
    """An actor for work nobody triggered over HTTP: the CLI, the demo seed, a worker."""
    return Actor(ActorKind.SYSTEM, what, SYSTEM_NAMES.get(what, what), request_id=request_id)


def member_as_actor(member_id: object, name: str, email: str, *, via: Actor) -> Actor:
    """The member who just signed in, as the author of what their sign-in writes (their
    session, its audit event), on the request ``via`` arrived by."""
    return Actor(
        ActorKind.MEMBER,
        str(member_id),
        f"{name} <{email}>",
        request_id=via.request_id,
        client_addr=via.client_addr,
    )
