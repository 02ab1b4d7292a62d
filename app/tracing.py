"""Optional OpenTelemetry tracing: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

When on, every HTTP request is a server span (``opentelemetry-instrumentation-asgi``,
continuing an incoming ``traceparent``), every asyncpg query and every outgoing httpx
request a child span, exported over OTLP/HTTP by a batch processor. The exporter reads the
standard ``OTEL_*`` variables itself (endpoint, headers, timeout), and the resource its
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (default service name ``tenantry``).

The request id in the logs and in ``X-Request-Id`` is then the trace id, so a log line
leads to its trace and back. The packages are the ``tracing`` extra
(``pip install 'tenantry[tracing]'``); the service refuses to start with the variable set
and the packages missing rather than run untraced without saying so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_provider: Any = None


class TracingUnavailableError(RuntimeError):
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` is set but the tracing packages are not installed."""


def start_tracing(endpoint: str, *, service: str) -> None:
    """Install the process's tracer provider and instrument asyncpg and httpx (once per
    process; later calls do nothing). ``service`` names the process kind (``serve`` or
    ``worker``), recorded as the resource attribute ``tenantry.process``."""
    global _provider
    if _provider is not None:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracingUnavailableError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the tracing packages are missing: "
            "pip install 'tenantry[tracing]'"
        ) from exc
    attributes = {"tenantry.process": service}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = "tenantry"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("tracing to %s", endpoint)


def stop_tracing() -> None:
    """Export what is buffered and stop; safe to call when tracing is off."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def asgi_middleware_class() -> Any:
    """OpenTelemetry's server-span ASGI middleware (for ``Starlette.add_middleware``)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or None outside a recorded trace."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def trace_id_source(enabled: bool) -> Callable[[], str | None] | None:
    """What the request middleware asks for a request id when tracing is on."""
    return current_trace_id if enabled else None
