"""Listening for cross-process notifications and dropping what they make stale.

One connection per process LISTENs on ``tenants.notifications.CHANNEL``. If it drops, the
caches are cleared (notifications may have been missed while it was away) and it
reconnects with a capped, jittered backoff, forever, whatever the error; while it is
away, the version checks on compiled policies and the answers' time-to-live still bound
staleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from app.api import PrincipalCache
from policies.cache import DecisionCache
from tenants import notifications
from tenants.ids import OrgId
from tenants.outages import Backoff, is_database_outage

log = logging.getLogger(__name__)


class Listener:
    def __init__(
        self,
        connect: Callable[[], Any],
        decisions: DecisionCache[OrgId],
        principals: PrincipalCache,
    ) -> None:
        self._connect = connect
        self.decisions = decisions
        self.principals = principals
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()

    def applied_locally(self, payloads: list[str]) -> None:
        """Apply notifications this process sent, right after its transaction committed."""
        for payload in payloads:
            self.on_notice(payload)

    def on_notice(self, payload: str) -> None:
        notice = notifications.parse(payload)
        if notice is None:
            log.warning("unknown notification %r", payload)
        elif notice.kind == "org" and notice.org_id is not None:
            self.decisions.invalidate_org(notice.org_id)
        elif notice.kind == "member" and notice.org_id is not None:
            self.decisions.invalidate_member(notice.org_id, notice.member_id)
        elif notice.kind == "credentials":
            self.principals.clear()

    async def _run(self) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, gone=lost: gone.set())
                await conn.add_listener(
                    notifications.CHANNEL, lambda _c, _pid, _ch, payload: self.on_notice(payload)
                )
                # Anything cached before this point may have missed a notification.
                self.decisions.clear()
                self.principals.clear()
                self.connected.set()
                backoff.reset()
                stop = asyncio.create_task(self._stopping.wait())
                gone = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
                for task in (stop, gone):
                    task.cancel()
            except Exception as exc:  # whatever happened, the listener must come back
                if is_database_outage(exc):
                    log.warning(
                        "notification listener disconnected: %s: %s", type(exc).__name__, exc
                    )
                else:
                    log.exception("notification listener failed")
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            if not self._stopping.is_set():
                self.decisions.clear()
                self.principals.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next_delay())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tenantry-notifications")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
