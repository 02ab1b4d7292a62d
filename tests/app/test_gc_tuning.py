"""The service collects cyclic garbage every TENANTRY_GC_THRESHOLD allocations (default
50,000, 0 for Python's own), set for the whole process by the app and the worker."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.runtime import tune_gc
from app.settings import Settings, SettingsError


@pytest.fixture
def kept_threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_the_threshold_comes_from_the_environment_and_is_bounded() -> None:
    assert Settings.from_env({}).gc_threshold == 50_000
    assert Settings.from_env({"TENANTRY_GC_THRESHOLD": "0"}).gc_threshold == 0
    assert Settings.from_env({"TENANTRY_GC_THRESHOLD": "120000"}).gc_threshold == 120_000
    for bad in ("-1", "many", "10000001"):
        with pytest.raises(SettingsError, match="TENANTRY_GC_THRESHOLD"):
            Settings.from_env({"TENANTRY_GC_THRESHOLD": bad})


def test_tuning_sets_the_young_generation_only_and_zero_leaves_python_alone(
    kept_threshold: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, 10, 10)
