"""Job kinds and their handlers.

A handler is an async function taking a ``RunningJob``. It runs outside any transaction
and opens ``tenant_transaction(job.org_id)`` for each unit of work; inside it, calling
``await job.checkpoint(...)`` saves progress and proves the worker still holds the lease,
in the same transaction as the work, so a unit of work commits with its checkpoint or not
at all. A handler that returns has finished the job; one that raises is retried with
exponential backoff (``RetryLaterError`` chooses the delay; ``PermanentJobError`` goes
straight to the dead-letter state).

Handler modules register themselves on import; ``app.worker.HANDLER_MODULES`` lists them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tenants import db
from tenants.ids import OrgId


class LeaseLostError(RuntimeError):
    """Another worker took the job over (this worker's lease expired): stop, roll back."""


class RetryLaterError(Exception):
    """The job cannot make progress now (a receiver is down); try again after ``delay``
    seconds, counting as a failed attempt."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentJobError(Exception):
    """Retrying cannot help (the job's subject is gone): dead at once."""


@dataclass
class RunningJob:
    org_id: OrgId
    id: uuid.UUID
    kind: str
    key: str
    payload: dict[str, Any]
    #: Progress saved by an earlier run, ``{}`` the first time.
    state: dict[str, Any]
    attempts: int
    claims: int
    worker: str
    lease_seconds: int
    extra: dict[str, Any] = field(default_factory=dict)

    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Save ``state`` in the open tenant transaction and extend the lease.

        Raises LeaseLostError when another worker holds the job now: the caller's
        transaction must roll back so its work is not applied twice.
        """
        result = await db.connection().execute_query(
            "UPDATE jobs SET checkpoint = $3::jsonb, heartbeat_at = now(), "
            "lease_until = now() + make_interval(secs => $5), updated_at = now() "
            "WHERE tenant_id = $1 AND id = $2 AND locked_by = $4 AND status = 'running'",
            [self.org_id, self.id, json.dumps(state), self.worker, self.lease_seconds],
        )
        if not result[0]:
            raise LeaseLostError(f"job {self.id} is no longer held by {self.worker}")
        self.state = state


Handler = Callable[[RunningJob], Awaitable[None]]

HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of ``kind``; one handler per kind."""

    def register(fn: Handler) -> Handler:
        if kind in HANDLERS and HANDLERS[kind] is not fn:
            raise RuntimeError(f"job kind {kind!r} has two handlers")
        HANDLERS[kind] = fn
        return fn

    return register
