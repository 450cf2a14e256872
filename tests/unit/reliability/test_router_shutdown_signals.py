"""How the router's server reacts to stop signals, before any socket is opened."""

from __future__ import annotations

import signal

import uvicorn
from modelplane.router.api.shutdown import DrainingServer, Readiness, ShutdownSettings


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("never served in these tests")


def server(delay_s: float) -> tuple[DrainingServer, Readiness]:
    readiness = Readiness()
    config = uvicorn.Config(_app, lifespan="off")
    return DrainingServer(config, readiness, ShutdownSettings(delay_s=delay_s)), readiness


async def test_sigterm_reports_not_ready_and_keeps_serving_during_the_delay() -> None:
    draining, readiness = server(delay_s=60)

    draining.handle_exit(signal.SIGTERM, None)

    assert readiness.shutting_down
    assert await draining.on_tick(0) is False
    assert not draining.should_exit


async def test_without_a_delay_the_next_tick_stops_accepting() -> None:
    draining, _ = server(delay_s=0)

    draining.handle_exit(signal.SIGTERM, None)

    assert await draining.on_tick(0) is True


async def test_a_second_signal_skips_the_rest_of_the_delay_and_a_third_sigint_forces() -> None:
    draining, _ = server(delay_s=60)
    draining.handle_exit(signal.SIGTERM, None)

    draining.handle_exit(signal.SIGTERM, None)
    assert draining.should_exit
    assert not draining.force_exit

    draining.handle_exit(signal.SIGINT, None)
    assert draining.force_exit
