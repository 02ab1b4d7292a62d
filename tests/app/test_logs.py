"""What the service's log holds: no request URL from the HTTP client (a webhook's or a
provider's address may carry a token in its query string)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from app.logs import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


async def test_the_http_clients_request_lines_stay_out_of_the_log(
    restored_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json_lines=True)
    secret = "access_token=SECRETQ123456"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await client.post(f"https://hooks.example.com/in?{secret}")
    logging.getLogger("tenantry.test").info("a line of our own")
    written = capfd.readouterr().err
    assert "a line of our own" in written  # the log works, at INFO
    assert secret not in written


def test_the_pools_reconnect_failures_during_an_outage_are_one_line_each(
    restored_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """asyncpg logs each failed reconnect of its pool floor with a traceback; while the
    database is down that is one line naming the error, and any other failure keeps its
    traceback."""
    configure_logging("INFO", json_lines=False)
    pool_log = logging.getLogger("asyncpg.pool")
    for error in (ConnectionRefusedError(111, "Connect call failed"), ValueError("a bug")):
        try:
            raise error
        except Exception:
            pool_log.warning("Failed to restore the pool connection floor; retrying", exc_info=True)
    lines = capfd.readouterr().err.splitlines()
    assert lines[0] == (
        "warning Failed to restore the pool connection floor; retrying (database unavailable:"
        " ConnectionRefusedError: [Errno 111] Connect call failed)"
    )
    assert lines[1] == "warning Failed to restore the pool connection floor; retrying"
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: a bug"
