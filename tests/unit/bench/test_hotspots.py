"""py-spy profile summaries: idle samples are set apart and our own code is reported per file."""

from __future__ import annotations

import sys

from bench.harness import REPO_ROOT
from bench.hotspots import component, parse

ROOT = str(REPO_ROOT)
STDLIB = f"python{sys.version_info.major}.{sys.version_info.minor}"
PROFILE = "\n".join(
    [
        f"main ({ROOT}/modelplane/cli.py:10);run (asyncio/runners.py:118) 5",
        f"main ({ROOT}/modelplane/cli.py:10);decide ({ROOT}/router/policy/engine.py:40) 3",
        f"main ({ROOT}/modelplane/cli.py:10);decide ({ROOT}/router/policy/engine.py:41) 1",
        f"main ({ROOT}/modelplane/cli.py:10);_request (/x/site-packages/aiohttp/client.py:700) 1",
        f"main ({ROOT}/modelplane/cli.py:10);select (/usr/lib/{STDLIB}/selectors.py:468) 10",
        "not a sample line",
    ]
)


def test_idle_event_loop_samples_are_counted_apart_from_busy_ones() -> None:
    hotspots = parse(PROFILE)

    assert hotspots.total_samples == 20
    assert hotspots.idle_samples == 10
    assert hotspots.busy_samples() == 10


def test_lines_of_one_function_count_as_one_frame() -> None:
    hotspots = parse(PROFILE)

    table = dict(hotspots.table(hotspots.self_samples, top=10))

    assert table["decide (router/policy/engine.py)"] == 0.4


def test_own_code_groups_by_file_and_other_code_by_package() -> None:
    assert component("decide (router/policy/engine.py)") == "router/policy/engine.py"
    assert component("_request (aiohttp/client.py)") == "aiohttp"
    assert component("run (asyncio/runners.py)") == "asyncio"
