"""Getting a command to a ready database: embedded or configured, prepared, migrated."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace

from tortoise.context import TortoiseContext

from app import database
from app.database import DatabaseUrls
from app.settings import Pooler, Settings


def tune_gc(threshold: int) -> None:
    """Collect the young generation every ``threshold`` allocations (0: Python's default),
    for the whole process (``Settings.gc_threshold``). Reference counting frees almost
    everything a request makes; the cycle collector only needs to run now and then, not
    every 700 allocations in the middle of answering."""
    if threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)


@contextmanager
def admin_url(settings: Settings) -> Iterator[str]:
    """The administrative URL: ``DATABASE_URL``, or the embedded server started for the
    duration of the block (stopped at process exit, reused by the next start)."""
    if settings.database_url:
        yield settings.database_url
        return
    with database.embedded_server(settings.data_dir) as server_url:
        yield database.with_database(server_url, settings.database_name)


async def ready_database(settings: Settings, url: str, *, migrate: bool) -> DatabaseUrls:
    """Prepare roles and database and apply migrations when ``migrate``; otherwise check
    that the database answers and is current (DatabaseSetupError naming what to do).
    Then that the runtime role connects and may serve. Returns the URLs."""
    if migrate:
        urls = await database.prepare_database(
            url, app_role=settings.app_role, app_database_url=settings.app_database_url
        )
        await database.migrate(urls)
    else:
        await database.check_current(url)
        urls = database.urls_for(
            url, app_role=settings.app_role, app_database_url=settings.app_database_url
        )
    urls = replace(
        urls,
        direct=settings.direct_app_database_url,
        pooled=settings.database_pooler is Pooler.TRANSACTION,
    )
    await database.check_runtime_connection(urls)
    return urls


@asynccontextmanager
async def orm(urls: DatabaseUrls, *, pool_size: int = 4) -> AsyncIterator[TortoiseContext]:
    """The ORM on the runtime role, for commands that run outside the web app."""
    ctx = TortoiseContext()
    async with ctx:
        await ctx.init(config=database.runtime_config(urls, pool_size))
        yield ctx
