"""Prometheus metrics for operators: ``/metrics`` on every ``serve`` process and on
``tenantry worker --metrics-port``.

Each process exposes its own figures (no shared multi-process directory): Prometheus
scrapes every process and sums in its queries, which is how the request counters, the pool
gauges and the per-process tallies (webhook outcomes, sign-ins, decision cache) add up.
Figures about the whole service (jobs waiting, audit sealing lag) come from one SECURITY
DEFINER function, ``service_metrics()``, read at scrape time and at most every few
seconds; every process reports the same values for them, so dashboards take ``max``.

Every name starts with ``tenantry_``. docs/operations.md lists them with the alerts worth
having.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from tortoise import connections

from tenants import telemetry

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[..., Any]

#: The route template of the request, set by the route that matched (see ``tag_routes``).
ROUTE_KEY = "tenantry.route"
UNMATCHED = "unmatched"

#: Latency buckets in seconds: the decision API answers in about a millisecond, console
#: pages in tens, exports and previews in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: How long figures read from the database are reused between scrapes.
# No ``*_created`` series: they doubled the series of every counter and histogram, and
# docs/operations.md lists none (a scraper derives restarts from the process's own start).
disable_created_metrics()  # type: ignore[no-untyped-call]

DATABASE_FIGURES_TTL = 5.0
#: The longest a scrape waits for the database figures (``refresh_database_figures``).
FIGURES_TIMEOUT = 2.0


def last_progress(worker: Any) -> float | None:
    """Unix time of ``worker``'s last loop round that reached the database (None when no
    worker runs, or it has made none yet)."""
    stalled = worker.stalled_for() if worker is not None else None
    return None if stalled is None else time.time() - stalled


class Metrics:
    """One process's metrics. ``decisions`` is the process's decision cache (or None in a
    worker); ``heartbeat`` returns the time of the worker loop's last turn, if one runs."""

    def __init__(
        self,
        *,
        decisions: Any = None,
        heartbeat: Callable[[], float | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "tenantry_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenantry_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ("route", "method"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.decisions = decisions
        self.heartbeat = heartbeat
        self._figures: list[dict[str, Any]] = []
        self._figures_read_at = 0.0
        self._figures_ok = False
        #: Whether the figures were ever read: until then they are unknown, not zero.
        self._figures_known = False
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry.register(_ProcessCollector(self))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock; reuse the children per key
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def refresh_database_figures(self) -> None:
        """Read ``service_metrics()`` unless it was read in the last few seconds. A database
        that does not answer leaves the last figures and sets ``tenantry_database_up`` 0."""
        now = time.monotonic()
        if now - self._figures_read_at < DATABASE_FIGURES_TTL:
            return
        self._figures_read_at = now
        try:
            # A scrape waits this long at most: with the pool taken (or a lock held), it
            # waited for a connection as long as the requests did, and Prometheus gave up
            # on the whole scrape, pool gauges included, and called the service down.
            async with asyncio.timeout(FIGURES_TIMEOUT):
                _, rows = await connections.get("default").execute_query(
                    "SELECT figure, kind, status, value FROM service_metrics()"
                )
        except Exception as exc:  # any failure to read is reported as a gauge, not a 500
            log.warning("metrics: cannot read service figures: %s", exc)
            self._figures_ok = False
            return
        self._figures = [dict(r) for r in rows]
        self._figures_ok = True
        self._figures_known = True

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class _ProcessCollector(Collector):
    """Figures read when scraped: the connection pool, the tallies of ``tenants.telemetry``,
    the decision cache, the worker's heartbeat and the service-wide database figures."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from _pool_metrics()
        for t in telemetry.tallies():
            family = CounterMetricFamily(f"tenantry_{t.name}", t.documentation, labels=t.labels)
            for values, count in sorted(t.counts.items()):
                family.add_metric(list(values), count)
            yield family
        cache = self.metrics.decisions
        if cache is not None:
            lookups = CounterMetricFamily(
                "tenantry_decision_cache",
                "Decision API answers served from the cache (hit) or computed (miss).",
                labels=("result",),
            )
            lookups.add_metric(["hit"], cache.hits)
            lookups.add_metric(["miss"], cache.misses)
            yield lookups
        if self.metrics.heartbeat is not None:
            beat = self.metrics.heartbeat()
            if beat is not None:
                yield GaugeMetricFamily(
                    "tenantry_worker_heartbeat_timestamp_seconds",
                    "When this process's job worker last completed a turn of its loop.",
                    value=beat,
                )
        yield from _database_metrics(self.metrics)


def _pool_metrics() -> Iterator[Metric]:
    try:
        pool = getattr(connections.get("default"), "_pool", None)
    except Exception:  # tortoise not initialised in this process (yet)
        pool = None
    if pool is None:
        return
    size, idle = pool.get_size(), pool.get_idle_size()
    # asyncpg keeps no public count of waiters; its holder queue is an asyncio queue whose
    # pending getters are the acquirers waiting for a connection.
    waiting = len(getattr(getattr(pool, "_queue", None), "_getters", ()) or ())
    connections_family = GaugeMetricFamily(
        "tenantry_db_pool_connections",
        "Connections of this process's database pool, by state.",
        labels=("state",),
    )
    connections_family.add_metric(["in_use"], size - idle)
    connections_family.add_metric(["idle"], idle)
    yield connections_family
    yield GaugeMetricFamily(
        "tenantry_db_pool_max_connections", "The pool's maximum size.", value=pool.get_max_size()
    )
    yield GaugeMetricFamily(
        "tenantry_db_pool_waiting",
        "Requests waiting for a connection from this process's pool.",
        value=waiting,
    )


def _database_metrics(metrics: Metrics) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "tenantry_database_up",
        "1 when the last read of the service's database figures succeeded.",
        value=1.0 if metrics._figures_ok else 0.0,
    )
    if not metrics._figures_known:
        # A process started in an outage has not read them once: absent, not 0, which
        # would say nothing waits and clear the backlog and sealing alerts.
        return
    jobs = GaugeMetricFamily(
        "tenantry_jobs",
        "Jobs of all organisations by kind and status (queued, running, dead).",
        labels=("kind", "status"),
    )
    single: dict[str, tuple[str, str]] = {
        "oldest_due_job_seconds": (
            "tenantry_jobs_oldest_due_seconds",
            "Age of the oldest queued job that is due (0 when none waits).",
        ),
        "audit_pending": (
            "tenantry_audit_pending_events",
            "Audit events recorded but not yet sealed into their organisation's chain.",
        ),
        "audit_sealing_lag_seconds": (
            "tenantry_audit_sealing_lag_seconds",
            "Age of the oldest audit event waiting to be sealed (0 when none waits).",
        ),
    }
    seen: set[str] = set()
    for row in metrics._figures:
        if row["figure"] == "jobs":
            jobs.add_metric([row["kind"], row["status"]], row["value"])
        elif row["figure"] in single:
            name, doc = single[row["figure"]]
            seen.add(row["figure"])
            yield GaugeMetricFamily(name, doc, value=row["value"])
    yield jobs
    for figure, (name, doc) in single.items():
        if figure not in seen:
            yield GaugeMetricFamily(name, doc, value=0.0)


def tag_routes(routes: Iterable[BaseRoute], prefix: str = "") -> None:
    """Make each route record its template in the request scope when it matches, so the
    request metrics are labelled by template (``/v1/members/{id}``), never by raw path:
    a label per member id would grow without bound. The routes inside a mount are tagged
    with their whole template (``/scim/v2/Users/{id}``; all of SCIM was ``/scim/v2``)."""
    for route in routes:
        if isinstance(route, Route | Mount):
            route.app = _tagged(route.app, prefix + route.path or "/")
        if isinstance(route, Mount):
            tag_routes(route.routes, prefix + route.path)


def _tagged(app: ASGIApp, template: str) -> ASGIApp:
    async def tagged(scope: Scope, receive: Any, send: Any) -> None:
        scope[ROUTE_KEY] = template
        await app(scope, receive, send)

    return tagged


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.observe(
                scope.get(ROUTE_KEY, UNMATCHED),
                scope["method"],
                status,
                time.perf_counter() - started,
            )


def metrics_endpoint(metrics: Metrics, *, token: str | None) -> Any:
    """The ``/metrics`` handler. With ``token`` set, a matching bearer token is required
    (from any address); without one, only loopback clients are answered, so a development
    machine needs no set-up and a production node leaks nothing by default."""
    expected = f"Bearer {token}".encode() if token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    "metrics need the bearer token (TENANTRY_METRICS_TOKEN)\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                    media_type="text/plain",
                )
        else:
            host = request.client.host if request.client else ""
            if host not in {"127.0.0.1", "::1", "localhost"}:
                return Response(
                    "metrics are served to this machine only; set TENANTRY_METRICS_TOKEN to "
                    "scrape from elsewhere\n",
                    status_code=403,
                    media_type="text/plain",
                )
        await metrics.refresh_database_figures()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint


def metrics_app(metrics: Metrics, *, token: str | None) -> Starlette:
    """A server of ``/metrics`` alone, for ``tenantry worker --metrics-port``."""
    return Starlette(routes=[Route("/metrics", metrics_endpoint(metrics, token=token))])
