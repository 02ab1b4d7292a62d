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
from tenants.policy.schedule import keep_policy_schedule
from tenants.privacy.partitions import maintain_partitions
from tenants.sessions.service import sweep_expired_sessions

log = logging.getLogger(__name__)

#: Modules whose import registers job handlers (``tenants.jobs.registry.handler``).
HANDLER_MODULES: tuple[str, ...] = (
    "tenants.audit.verification",
    "tenants.departures.steps",
    "tenants.domains.jobs",
    "tenants.identity.sync",
    "tenants.mail.delivery",
    "tenants.policy.previews",
    "tenants.privacy.retention",
    "tenants.requests.jobs",
    "tenants.reviews.jobs",
    "tenants.webhooks.sender",
)


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def configure_handlers(settings: Settings) -> None:
    """Register the handlers and give those that need them the service's settings (the
    webhook sender unseals product secrets with the secret key)."""
    load_handlers()
    from tenants import network
    from tenants.webhooks import sender

    sender.configure(settings.secret_key)
    network.configure(settings.outbound_networks)
    from app.mail import configure_mail

    configure_mail(settings)
    from tenants.identity import sync as identity_sync

    identity_sync.configure(settings.secret_key)
    from tenants.domains import jobs as domain_jobs

    domain_jobs.configure(settings.dns_lookup())


@asynccontextmanager
async def background_worker(worker: Worker, settings: Settings) -> AsyncIterator[Worker]:
    """Run ``worker`` as a task for the duration of the block, with the audit sealer
    (``tenants.audit.sealer``), the sweep of expired sessions, the upkeep of the time
    partitions (made ahead at start and daily, dropped once expired:
    ``tenants.privacy.partitions``) and the policy schedule's notices and announcements
    (``tenants.policy.schedule``) beside it; stop them cleanly after. The background work
    of a deployment is here, so a web node without a worker serves requests only."""
    configure_handlers(settings)
    sealer = AuditSealer.start()
    from tenants.privacy import retention

    try:
        await retention.schedule_all()
    except Exception:  # a worker that cannot queue retention still runs every other job
        log.exception("could not queue the organisations' retention runs")
    task = asyncio.create_task(worker.run_forever(), name=f"worker-{worker.name}")
    stop_sweeping = asyncio.Event()
    sweeper = asyncio.create_task(
        sweep_expired_sessions(stop_sweeping), name=f"session-sweeper-{worker.name}"
    )
    partitioner = asyncio.create_task(
        maintain_partitions(stop_sweeping), name=f"partitions-{worker.name}"
    )
    scheduler = asyncio.create_task(
        keep_policy_schedule(stop_sweeping), name=f"policy-schedule-{worker.name}"
    )
    try:
        yield worker
    finally:
        worker.stop()
        stop_sweeping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for helper in (sweeper, partitioner, scheduler):
            with contextlib.suppress(asyncio.CancelledError):
                await helper
        await sealer.stop()  # after the jobs: it seals the events of their last steps


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
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(tracing.stop_tracing)
        if metrics_port is not None:
            await stack.enter_async_context(metrics_server(settings, metrics_port, worker))
        try:
            async with background_worker(worker, settings):
                await worker.stopped()
        finally:
            from tenants.webhooks import sender

            await sender.aclose()


@asynccontextmanager
async def metrics_server(settings: Settings, port: int, worker: Worker) -> AsyncIterator[None]:
    """Serve this process's ``/metrics`` on ``port`` for the duration of the block."""
    import uvicorn

    from app.metrics import Metrics, last_progress, metrics_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the worker's own SIGINT/SIGTERM handlers stop the process

    app = metrics_app(
        Metrics(heartbeat=lambda: last_progress(worker)), token=settings.metrics_token
    )
    config = uvicorn.Config(app, host=settings.host, port=port, log_config=None, lifespan="off")
    server = Server(config)
    task = asyncio.create_task(server.serve(), name="metrics-server")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def worker_health(*, name: str | None, within: float) -> tuple[bool, str]:
    """``tenantry worker --health``: whether the worker ``name`` (default: any worker of this
    host) wrote its heartbeat row within ``within`` seconds, and a line saying what was
    found. A worker whose loop is stuck, or that lost the database, stops writing it."""
    import socket

    from tortoise import connections

    _, rows = await connections.get("default").execute_query(
        "SELECT name, extract(epoch FROM now() - heartbeat_at)::float8 AS age FROM workers "
        "WHERE ($1::text IS NULL AND host = $2) OR name = $1 ORDER BY heartbeat_at DESC",
        [name, socket.gethostname()],
    )
    if not rows:
        return False, f"no heartbeat from {name or 'any worker of ' + socket.gethostname()}"
    fresh = [r for r in rows if r["age"] <= within]
    report = ", ".join(f"{r['name']} {r['age']:.1f} s ago" for r in rows)
    return bool(fresh), f"last heartbeat {report} (limit {within:g} s)"
