"""Running the durable job worker: in its own process (``tenantry worker``) or inside
``tenantry serve`` (the default, so a single-process deployment and the demo need nothing
else running)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tenants.audit.sealer import AuditSealer
from tenants.jobs.worker import Worker

log = logging.getLogger(__name__)

#: Modules whose import registers job handlers (``tenants.jobs.registry.handler``).
HANDLER_MODULES: tuple[str, ...] = (
    "tenants.departures.steps",
    "tenants.webhooks.sender",
)


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


@asynccontextmanager
async def background_worker(worker: Worker) -> AsyncIterator[Worker]:
    """Run ``worker`` as a task for the duration of the block; stop it cleanly after."""
    load_handlers()
    task = asyncio.create_task(worker.run_forever(), name=f"worker-{worker.name}")
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_worker_process(worker: Worker) -> None:
    """``tenantry worker``: jobs and audit sealing until SIGINT or SIGTERM.

    A stop lets running handlers finish their current unit of work; a SIGKILL is also
    safe (leases expire and another worker resumes from the last checkpoint), only slower.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    sealer = AuditSealer.start()
    try:
        async with background_worker(worker):
            while not worker.stopping:
                await asyncio.sleep(0.2)
    finally:
        await sealer.stop()
