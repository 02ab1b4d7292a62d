"""Every benchmark's ``--quick`` run works: a broken benchmark fails the build.

Each script runs as people run it (``python bench/NAME.py --quick``) on this session's
PostgreSQL server (``BENCH_DATABASE_URL``: it creates and drops a database of its own) and
must exit 0 with its figures as the last lines, ``ratio NAME = VALUE (goal OP TARGET)``.
The goals themselves are not checked: quick runs are too small to measure them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
RATIO = re.compile(r"^ratio [a-z0-9_]+ = -?\d+\.\d{3} \(goal (>=|<=) \d+(\.\d+)?\)$")


def test_every_benchmark_script_is_run_here() -> None:
    assert {"access.py", "audit.py", "decision.py", "scale.py", "signin.py"} <= set(SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_quick_run_exits_cleanly_and_ends_with_its_ratios(script: str, admin_server_url: str) -> None:
    env = {**os.environ, "BENCH_DATABASE_URL": admin_server_url, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        cwd=BENCH.parent, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    ratios = [line for line in lines if line.startswith("ratio ")]
    assert ratios, tail
    assert lines[-len(ratios):] == ratios, "the ratio lines must come last:\n" + tail
    for line in ratios:
        assert RATIO.match(line), line


def test_wrk_is_given_whole_seconds() -> None:
    """wrk reads no fraction of a second (``-d0.2s`` prints its usage and no result), and
    the quick runs' rounds are shorter than one."""
    sys.path.insert(0, str(BENCH))
    try:
        from _common import wrk_argv
    finally:
        sys.path.remove(str(BENCH))
    for seconds, whole in ((0.2, "-d1s"), (1.4, "-d1s"), (2.6, "-d3s"), (30.0, "-d30s")):
        argv = wrk_argv(Path("run.lua"), "http://127.0.0.1:1/", connections=8, seconds=seconds)
        assert argv[0] == "wrk" and whole in argv and "-c8" in argv, argv
        assert argv[-3:] == ["-s", "run.lua", "http://127.0.0.1:1/"]
