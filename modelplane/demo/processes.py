"""Child processes the demo starts and always tears down, Ctrl-C included.

Each child runs in its own session (process group), so the terminal's Ctrl-C reaches only the
demo itself, which then stops the children in order: SIGTERM to the whole group, then SIGKILL
to whatever is left after a grace period. Nothing outlives the demo.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

STOP_GRACE_S = 5.0


class ProcessStartError(RuntimeError):
    pass


class ManagedProcess:
    """One child process with its output in a log file, stopped with its whole group."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def exited(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, what: str, probe: Callable[[], bool], timeout_s: float) -> float:
        """Poll `probe` until it holds; returns the seconds waited. Fails fast if we exit."""
        started = time.monotonic()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {code} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if probe():
                return time.monotonic() - started
            time.sleep(0.2)
        raise ProcessStartError(
            f"{self.name} did not {what} within {timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def wait_until_http_ok(self, url: str, timeout_s: float) -> float:
        """Poll `url` until it answers 2xx; returns the seconds waited."""
        with httpx.Client(timeout=2.0) as client:

            def answers() -> bool:
                try:
                    return client.get(url).is_success
                except httpx.TransportError:
                    return False

            return self.wait_until(f"answer {url}", answers, timeout_s)

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            process.wait(timeout=STOP_GRACE_S)
        finally:
            # the leader may be gone while members of its group linger
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
