"""Running the durable job worker: in its own process (``tenantry worker``) or inside
``tenantry serve`` (the default, so a single-process deployment and the demo need nothing
else running)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from app import tracing
from app.settings import Settings
from tenants.audit.sealer import AuditSealer
from tenants.jobs.worker import Worker

log = logging.getLogger(__name__)

#: Modules whose import registers job handlers (``tenants.jobs.registry.handler``).
HANDLER_MODULES: tuple[str, ...] = (
    "tenants.departures.steps",
    "tenants.identity.sync",
    "tenants.mail.delivery",
    "tenants.requests.jobs",
    "tenants.webhooks.sender",
)


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def configure_handlers(settings: Settings) -> None:
    """Register the handlers and give those that need them the service's settings (the
    webhook sender unseals product secrets with the secret key)."""
    load_handlers()
    from tenants.webhooks import sender

    sender.configure(settings.secret_key)
    from app.mail import configure_mail

    configure_mail(settings)
    from tenants.identity import sync as identity_sync

    identity_sync.configure(settings.secret_key)


@asynccontextmanager
async def background_worker(worker: Worker, settings: Settings) -> AsyncIterator[Worker]:
    """Run ``worker`` as a task for the duration of the block; stop it cleanly after."""
    configure_handlers(settings)
    task = asyncio.create_task(worker.run_forever(), name=f"worker-{worker.name}")
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_worker_process(
    worker: Worker, settings: Settings, *, metrics_port: int | None = None
) -> None:
    """``tenantry worker``: jobs and audit sealing until SIGINT or SIGTERM, and with
    ``metrics_port`` the process's Prometheus metrics on that port (``settings.host``).

    A stop lets running handlers finish their current unit of work; a SIGKILL is also
    safe (leases expire and another worker resumes from the last checkpoint), only slower.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    if settings.otel_endpoint:
        tracing.start_tracing(settings.otel_endpoint, service="worker")
    sealer = AuditSealer.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(tracing.stop_tracing)
        if metrics_port is not None:
            await stack.enter_async_context(metrics_server(settings, metrics_port))
        try:
            async with background_worker(worker, settings):
                await worker.stopped()
        finally:
            await sealer.stop()
            from tenants.webhooks import sender

            await sender.aclose()


@asynccontextmanager
async def metrics_server(settings: Settings, port: int) -> AsyncIterator[None]:
    """Serve this process's ``/metrics`` on ``port`` for the duration of the block."""
    import uvicorn

    from app.metrics import Metrics, metrics_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the worker's own SIGINT/SIGTERM handlers stop the process

    app = metrics_app(Metrics(), token=settings.metrics_token)
    config = uvicorn.Config(app, host=settings.host, port=port, log_config=None, lifespan="off")
    server = Server(config)
    task = asyncio.create_task(server.serve(), name="metrics-server")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
