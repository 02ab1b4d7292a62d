"""Telling a database outage from a bug, and waiting one out.

Background loops (the job worker, the audit sealer, the notification listener) must
outlive PostgreSQL restarts: while the server restarts, asyncpg raises ``OSError``
(connection refused), ``CannotConnectNowError`` (57P03, still recovering),
``TooManyConnectionsError`` (53300, the server's connections all taken),
``AdminShutdownError`` (57P01, a fast shutdown ended the session),
``ConnectionDoesNotExistError`` and ``InterfaceError`` (a pooled connection that died);
tortoise passes them through, sometimes as the cause of its own errors. Such a loop logs
the outage, waits a capped, jittered, growing delay (``Backoff``) and tries again, forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from tortoise.exceptions import DBConnectionError

log = logging.getLogger(__name__)


def _is_outage_itself(exc: BaseException) -> bool:
    return isinstance(
        exc,
        OSError  # refused, reset, timed out (TimeoutError is an OSError)
        | asyncpg.PostgresConnectionError  # SQLSTATE class 08
        | asyncpg.OperatorInterventionError  # class 57: shutdown, cannot connect now
        # 53300: every connection the server allows is taken (by others, or a pooler's).
        | asyncpg.TooManyConnectionsError
        # Class 28: the role's password or pg_hba.conf refuses it. Not a bug in a request
        # either: a password being rotated, or a wrong one, which the log names each time.
        | asyncpg.InvalidAuthorizationSpecificationError
        | asyncpg.InterfaceError  # the connection is closed
        # A pooled connection whose session the server ended mid-operation is left in a
        # state the driver refuses the next statement in ("cannot switch to state 15;
        # another operation is in progress"): the connection is gone, not the query wrong.
        | asyncpg.InternalClientError
        | DBConnectionError,
    )


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable or restarting (rather than that a
    query or the code is wrong): looks through causes, contexts and exception groups."""
    return _anywhere_in(exc, _is_outage_itself)


def is_concurrency_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL ending a transaction for clashing with a concurrent
    one (SQLSTATE class 40: a deadlock, a serialization failure): nothing wrong with the
    request, and the same request later usually succeeds. Looks where is_database_outage
    looks."""
    return _anywhere_in(exc, lambda e: isinstance(e, asyncpg.TransactionRollbackError))


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL giving up a wait for a lock (``lock_timeout``, 55P03):
    someone else held it for longer; the same statement later usually succeeds. Looks
    where is_database_outage looks."""
    return _anywhere_in(exc, lambda e: isinstance(e, asyncpg.LockNotAvailableError))


def _anywhere_in(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if test(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return False


@dataclass
class Backoff:
    """Delays between tries after consecutive failures: ``base`` doubling up to ``cap``
    seconds, each drawn uniformly from [50%, 100%] of that value so processes that lost
    the database together do not come back in lockstep. ``reset`` after a success."""

    base: float = 0.25
    cap: float = 5.0
    failures: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before the next try."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** (self.failures - 1))
        return float(ceiling * self._random.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.failures = 0


async def run_periodically(
    what: str,
    work: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    every: float,
    backoff: Backoff | None = None,
) -> None:
    """Run ``work`` now, then every ``every`` seconds, until ``stop`` is set: the loop the
    worker runs beside its jobs for each of its sweeps. A failed round is logged (an outage
    as a warning, anything else with its traceback) and tried again after ``backoff``'s
    delay (by default 5 s doubling to 5 min) when that comes sooner than the next round,
    so a database restart costs seconds and never ends the loop."""
    backoff = backoff or Backoff(base=5.0, cap=300.0)
    while not stop.is_set():
        wait = every
        try:
            await work()
            backoff.reset()
        except Exception as exc:  # the worker's other work goes on; tried again soon
            if is_database_outage(exc):
                log.warning("%s: the database is away (%s); will retry", what, type(exc).__name__)
            else:
                log.exception("%s failed; will retry", what)
            wait = min(wait, backoff.next_delay())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
