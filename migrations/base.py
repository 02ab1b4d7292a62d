"""The base of every migration here: tortoise's, recorded as applied in its own
transaction, and applied without copying the schema state for operations that never read
the state before them.

Tortoise commits a migration, then records it in a statement of its own: a process killed
between the two leaves a database whose schema holds the migration while the record says
it is pending, and every later ``migrate`` fails on "already exists". Here the record is
the migration's last statement, so both commit or neither does (the executor's own record
afterwards finds it there: ``app.database.MigrationRecord``).

Applying a migration, tortoise copies the whole model state before each operation, so that
the operation can compare the schema before and after it. A copy rebuilds every model of
every app: with some sixty models, each copy costs about a tenth of a second, and a fresh
database took about 12 s to migrate, 10 of them copying. ``RunSQL`` reads neither state
and ``CreateModel`` reads only the state after it, and they are most of the operations
here; for them the copy is skipped. Every other operation, and every dry run, SQL
collection and reversal, goes through tortoise's own code unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base import BaseSchemaEditor
from tortoise.migrations.schema_generator.state import State

#: Operations whose ``database_forward`` does not read the state before them.
NO_PRIOR_STATE: tuple[type[ops.Operation], ...] = (ops.RunSQL, ops.CreateModel)


class Migration(migrations.Migration):
    async def apply(
        self,
        state: State,
        *,
        dry_run: bool = False,
        schema_editor: BaseSchemaEditor | None = None,
        collect_sql: bool = False,
    ) -> State:
        if dry_run or collect_sql or schema_editor is None:
            return await super().apply(
                state, dry_run=dry_run, schema_editor=schema_editor, collect_sql=collect_sql
            )
        supports_transactions = schema_editor.client.capabilities.supports_transactions
        for operation in self.operations:
            # The operations in NO_PRIOR_STATE are handed the current state as the prior one:
            # they do not read it.
            before = state if isinstance(operation, NO_PRIOR_STATE) else state.clone()
            operation.state_forward(self.app_label, state)
            await self._run_database_forward(
                operation, before, state, schema_editor, supports_transactions
            )
        state.validate_relations_initialized()
        if schema_editor.atomic_migration:
            await schema_editor.client.execute_query(
                RECORD_APPLIED, [self.app_label, self.name, datetime.now(UTC)]
            )
        return state


class _BySql:
    """A tortoise field operation whose change of the model state is tortoise's and whose
    change of the database is ``self.sql``, for what tortoise's own SQL gets wrong."""

    sql: str

    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is not None:
            await state_editor._run_sql(self.sql)


class AddColumnWithDefault(_BySql, ops.AddField):
    """``AddField`` of a NOT NULL column whose default the database gets too, so that the
    rows already there take it. Tortoise's own ``AddField`` adds such a column without a
    default, which fails on any table with rows: migrations 0027 (organisations) and 0041
    (SSO connections) stopped the upgrade of every database that had one. ``column_sql``
    is the column's type and default as SQL (``boolean NOT NULL DEFAULT false``)."""

    def __init__(self, *, model_name: str, name: str, field: Any, table: str, column_sql: str):
        super().__init__(model_name=model_name, name=name, field=field)
        self.sql = f"ALTER TABLE {table} ADD COLUMN {name} {column_sql};"


class AlterColumnType(_BySql, ops.AlterField):
    """``AlterField`` that changes a column's type in place (``ALTER COLUMN … TYPE``):
    from ``varchar(n)`` to ``text`` PostgreSQL rewrites neither the table nor its
    indexes."""

    def __init__(self, *, model_name: str, name: str, field: Any, table: str, sql_type: str):
        super().__init__(model_name=model_name, name=name, field=field)
        self.sql = f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {sql_type};"


#: A migration's record of being applied; nothing when it is there already.
RECORD_APPLIED = (
    'INSERT INTO "tortoise_migrations" ("app", "name", "applied_at") VALUES ($1, $2, $3) '
    'ON CONFLICT ("app", "name") DO NOTHING'
)
