"""Demo child processes are stopped with everything they started."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from modelplane.demo.processes import ManagedProcess, ProcessStartError


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is already dead; only its parent has not reaped it
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_stop_ends_the_whole_process_group_including_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    process = ManagedProcess("shell", ["sh", "-c", script], tmp_path / "log")
    with process:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        grandchild = int(pid_file.read_text())
        assert alive(grandchild)
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    assert process.exited() is not None


def test_a_child_that_exits_while_starting_fails_fast_with_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('bad flag --nope'); raise SystemExit(3)"]
    with (
        ManagedProcess("broken", command, tmp_path / "log") as process,
        pytest.raises(ProcessStartError, match="bad flag --nope"),
    ):
        process.wait_until_http_ok("http://127.0.0.1:9/never", timeout_s=30)
