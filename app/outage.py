"""What a request gets while the database is unreachable or restarting: a 503 saying so
(a problem, a SCIM error or a page, with ``Retry-After``), one log line rather than a
traceback per request, and a pool that reconnects instead of handing out dead sessions.

A PostgreSQL restart or a terminated backend leaves every idle pooled connection dead;
asyncpg notices only when one is used, so without ``forget_pooled_connections`` each of
them would fail one more request before the pool replaced it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from tortoise import connections

log = logging.getLogger("tenantry.outage")

#: Seconds a client is asked to wait: a restart of a healthy server takes a few.
RETRY_AFTER = 5
#: At most one outage line per this many seconds (the rest are counted into the next).
LOG_EVERY = 5.0


class _Throttle:
    def __init__(self) -> None:
        self.last = float("-inf")
        self.quiet = 0

    def note(self, error: BaseException, where: str) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY:
            self.quiet += 1
            return
        also = f" ({self.quiet} more requests since the last line)" if self.quiet else ""
        log.warning(
            "database unavailable, answered 503: %s: %s in %s%s",
            type(error).__name__,
            str(error)[:200],
            where,
            also,
        )
        self.last, self.quiet = now, 0


_throttle = _Throttle()


def note(error: BaseException, where: str) -> None:
    """Log the outage that failed ``where`` (a method and path), throttled."""
    _throttle.note(error, where)


async def forget_pooled_connections() -> None:
    """Have the pool replace every connection it holds when next asked for one, so the
    requests after an outage get live sessions (asyncpg ``Pool.expire_connections``)."""
    try:
        pool = getattr(connections.get("default"), "_pool", None)
    except Exception:
        return
    if pool is not None:
        await pool.expire_connections()


@contextmanager
def quiet_closes_of_dead_connections() -> Iterator[None]:
    """For the block, in the running loop: a pooled connection that the pool replaces
    after ``forget_pooled_connections`` is closed by asyncpg in a task nobody awaits; when
    the server has already ended its session, that close fails (a broken pipe) and asyncio
    logged "Task exception was never retrieved" with a traceback at ERROR, once per pooled
    connection. Those are expected and go to debug; every other exception goes to the
    loop's handler as before."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("future")
        error = context.get("exception")
        closing = getattr(getattr(task, "get_coro", lambda: None)(), "__qualname__", "")
        if (closing == "Connection.close" or closing.endswith(".Connection.close")) and isinstance(
            error, OSError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError
        ):
            log.debug("a replaced database connection was already gone: %s", error)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)
