"""Graceful shutdown of the router: readiness drops first, then requests in flight drain.

On SIGTERM (or SIGINT) a Kubernetes pod is removed from its Service's endpoints at the same time
as the signal arrives, and the removal takes a few seconds to reach every node and load balancer.
A server that stopped accepting at once would refuse the connections still being sent its way.
So the router, on the first signal:

1. reports not ready (`/readyz` answers 503), and keeps serving everything for `delay_s`;
2. then stops accepting connections and lets requests in flight (streams included) finish,
   for at most `drain_timeout_s` (uvicorn's `timeout_graceful_shutdown`), and exits with 0.

A second signal skips what is left of the delay; a SIGINT while draining stops at once.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class ShutdownSettings(BaseModel):
    """How the router stops (`--shutdown-delay`, `--shutdown-timeout`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: float = Field(
        default=0.0,
        ge=0,
        description="Keep serving, reported not ready, this long after the signal.",
    )
    drain_timeout_s: int = Field(  # whole seconds: uvicorn's timeout_graceful_shutdown
        default=30,
        ge=0,
        description="Then wait at most this long for requests in flight to finish.",
    )


class Readiness:
    """Whether the process is shutting down; `/readyz` reads it."""

    def __init__(self) -> None:
        self.shutting_down = False


class DrainingServer(uvicorn.Server):
    """A uvicorn server that announces its shutdown through `Readiness` before it begins it."""

    def __init__(
        self, config: uvicorn.Config, readiness: Readiness, settings: ShutdownSettings
    ) -> None:
        super().__init__(config)
        self._readiness = readiness
        self._settings = settings
        self._stop_accepting_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs as a signal handler: only set flags; on_tick acts on them within 0.1 s.
        # The signal is not re-raised after the drain (uvicorn's default), so the exit code is 0.
        if self._stop_accepting_at is None:
            self._readiness.shutting_down = True
            self._stop_accepting_at = time.monotonic() + self._settings.delay_s
            log.info(
                "%s received: not ready; serving %.1f s more, then draining for up to %d s",
                signal.Signals(sig).name,
                self._settings.delay_s,
                self._settings.drain_timeout_s,
            )
        elif self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._stop_accepting_at is not None and time.monotonic() >= self._stop_accepting_at:
            if not self.should_exit:
                log.info("no longer accepting connections; draining requests in flight")
            self.should_exit = True
        return await super().on_tick(counter)
