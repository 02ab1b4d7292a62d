"""``migrations.base.Migration`` makes the schema changes tortoise's own ``apply`` makes,
copying the schema state only for the operations that read the state before them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_generator.state import State
from tortoise.migrations.schema_generator.state_apps import StateApps

from migrations import base

APP = "sample"


class Recorder:
    """A schema editor that writes down what it is asked to do, with the model as the
    operation saw it (its table and fields), instead of doing it."""

    collect_sql = False
    atomic_migration = True  # no transaction around each operation: there is no database

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

        async def execute_query(sql: str, values: list[Any]) -> None:
            self.calls.append(("query", sql, *values[:2]))

        self.client = SimpleNamespace(
            capabilities=SimpleNamespace(supports_transactions=True), execute_query=execute_query
        )

    @staticmethod
    def _seen(model: Any) -> tuple[str, tuple[str, ...]]:
        return model._meta.db_table, tuple(sorted(model._meta.fields_map))

    async def create_model(self, model: Any) -> None:
        self.calls.append(("create", *self._seen(model)))

    async def add_field(self, model: Any, name: str) -> None:
        self.calls.append(("add", name, *self._seen(model)))

    async def remove_field(self, model: Any, field: Any) -> None:
        self.calls.append(("remove", field.model_field_name, *self._seen(model)))

    async def _run_sql(self, sql: str) -> None:
        self.calls.append(("sql", sql))


OPERATIONS: list[ops.Operation] = [
    ops.CreateModel(
        name="Thing",
        fields=[("id", fields.IntField(primary_key=True)), ("name", fields.TextField())],
        options={"table": "things", "app": APP},
    ),
    ops.RunSQL("CREATE INDEX things_name ON things (name)"),
    ops.AddField(model_name="Thing", name="size", field=fields.IntField(default=0)),
    ops.RemoveField(model_name="Thing", name="name"),
    ops.RunSQL("ANALYZE things"),
]


class Fast(base.Migration):
    operations = OPERATIONS


class Tortoise(migrations.Migration):
    operations = OPERATIONS


async def applied(migration: type[migrations.Migration], monkeypatch: pytest.MonkeyPatch
                  ) -> tuple[list[tuple[Any, ...]], int]:
    """What the schema editor was asked, and how many times the state was copied."""
    copies = 0
    clone = State.clone

    def counted(self: State) -> State:
        nonlocal copies
        copies += 1
        return clone(self)

    monkeypatch.setattr(State, "clone", counted)
    state = State(models={}, apps=StateApps(default_connections={APP: "default"}))
    editor = Recorder()
    await migration("0001_sample", APP).apply(state, schema_editor=editor)  # type: ignore[arg-type]
    monkeypatch.undo()
    return editor.calls, copies


async def test_the_schema_changes_are_tortoises_with_a_copy_only_where_one_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, fast_copies = await applied(Fast, monkeypatch)
    slow, slow_copies = await applied(Tortoise, monkeypatch)
    # The same changes, and then the migration's record, in its own transaction.
    assert fast == [*slow, ("query", base.RECORD_APPLIED, APP, "0001_sample")]
    assert slow == [
        ("create", "things", ("id", "name")),
        ("sql", "CREATE INDEX things_name ON things (name)"),
        ("add", "size", "things", ("id", "name", "size")),
        # The field is removed from the model as it was before the operation.
        ("remove", "name", "things", ("id", "name", "size")),
        ("sql", "ANALYZE things"),
    ]
    assert (fast_copies, slow_copies) == (2, 5)  # AddField and RemoveField read the prior state
