"""OpenTelemetry tracing, end to end: a ``tenantry serve`` process with
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP/HTTP receiver started here exports a
server span per request with the database queries as its children, continues a caller's
``traceparent``, and uses the trace id as the request id in its answer and its logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.database import DatabaseUrls
from app.settings import Settings, SettingsError
from tests.conftest import OrgHandle
from tests.support.processes import free_port, start_tenantry, tenantry_env

pytestmark = pytest.mark.slow


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    service: str


@dataclass
class Collector:
    url: str
    spans: list[Span] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    self.spans.append(
                        Span(
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.name,
                            s.kind,
                            {
                                a.key: a.value.string_value or a.value.int_value
                                for a in s.attributes
                            },
                            resource.get("service.name", ""),
                        )
                    )
        return Response(status_code=200, media_type="application/x-protobuf")

    def of_trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@pytest.fixture(scope="module")
async def collector() -> AsyncIterator[Collector]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    found = Collector(f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = Starlette(routes=[Route("/v1/traces", found.handle, methods=["POST"])])
    server = _Quiet(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 -- uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield found
    server.should_exit = True
    await task
    sock.close()


@dataclass
class Traced:
    url: str
    log: Path


@pytest.fixture(scope="module")
async def traced(
    collector: Collector,
    database_urls: DatabaseUrls,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    app: Any,
) -> AsyncIterator[Traced]:
    folder = tmp_path_factory.mktemp("traced")
    port = free_port()
    env = tenantry_env(
        database_urls,
        settings.secret_key,
        folder / "data",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        LOG_FORMAT="json",
    )
    log = folder / "serve.log"
    process = start_tenantry(["serve", "--no-migrate", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                await asyncio.sleep(0.1)
        yield Traced(url, log)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


async def spans_of(collector: Collector, trace_id: str, *, at_least: int) -> list[Span]:
    deadline = time.monotonic() + 10
    while len(collector.of_trace(trace_id)) < at_least:
        assert time.monotonic() < deadline, f"{len(collector.of_trace(trace_id))} spans arrived"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the batch may still be on its way
    return collector.of_trace(trace_id)


async def test_a_request_is_a_server_span_with_its_queries_as_children_and_its_id_is_the_trace_id(
    traced: Traced, collector: Collector, org: OrgHandle
) -> None:
    async with httpx.AsyncClient(base_url=traced.url, headers=org.headers) as http:
        response = await http.get("/v1/members", params={"limit": 5})
    assert response.status_code == 200, response.text
    trace_id = response.headers["x-request-id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    spans = await spans_of(collector, trace_id, at_least=2)
    [server] = [s for s in spans if s.kind == 2]  # SPAN_KIND_SERVER
    assert server.parent_id == ""
    assert server.service == "tenantry"
    queries = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert queries, [s.name for s in spans]
    assert all(s.parent_id for s in queries)
    logged = [
        json.loads(line)
        for line in traced.log.read_text().splitlines()
        if line.startswith("{") and trace_id in line
    ]
    assert any(entry.get("request_id") == trace_id for entry in logged), logged[:3]


async def test_a_callers_traceparent_is_continued(
    traced: Traced, collector: Collector, org: OrgHandle
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with httpx.AsyncClient(base_url=traced.url, headers=org.headers) as http:
        response = await http.get(
            "/v1/organisation", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"}
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == caller_trace
    spans = await spans_of(collector, caller_trace, at_least=1)
    [server] = [s for s in spans if s.kind == 2]
    assert server.parent_id == caller_span


def test_tracing_is_off_unless_the_endpoint_is_set() -> None:
    assert Settings.from_env({"TENANTRY_SECRET_KEY": "k" * 40}).otel_endpoint is None
    on = Settings.from_env(
        {"TENANTRY_SECRET_KEY": "k" * 40, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    )
    assert on.otel_endpoint == "http://collector:4318"
    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        Settings.from_env(
            {"TENANTRY_SECRET_KEY": "k" * 40, "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}
        )
