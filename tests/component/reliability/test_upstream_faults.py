"""Faults of the preferred upstream under concurrent load, on the real router process.

The router prefers the in-cluster llama (cheaper) and may fall back to the external GPT-4o, which
stays healthy. One fault at a time is injected into llama while a few hundred requests run, 24 at
a time: public ones (may leave the cluster), confidential, PII-carrying and pinned ones (llama
only). For each fault:

- every public request is served, by GPT-4o, whole;
- every request that may only use llama gets `503 no_eligible_backend` in OpenAI's error format
  (a stream already under way ends with a `stream_interrupted` error event and `[DONE]`);
- GPT-4o receives exactly the public requests, never one that must stay in the cluster;
- no request takes longer than llama's timeout plus a generous margin (a bound against hangs);
- the cooldown takes llama out of rotation (requests stop trying it), and once llama heals the
  router sends it traffic again within the cooldown period.

Each test runs twice: llama behind the router's direct pass-through adapter, then behind the
LiteLLM adapter (which providers that need translation use). The router scrapes no engine metrics
here (`--scrape-interval 0`), so what is measured is the request path's own handling: attempts,
fallback and cooldown. Run with `-s` to print one line of figures per fault (docs/reliability.md).

An upstream 429 is the backend's own rate limit, not the tenant's: the router treats it like a
5xx (next eligible backend, counts toward cooldown) and, when no other backend may serve the
request, answers `503 no_eligible_backend`, not 429, since `429` from the router means the
tenant's own limit (`rate_limit_exceeded`). An upstream 401 (the router's credentials for the
backend refused) is likewise the backend's failure, never passed on as the client's own 401.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.upstream import LoopbackUpstream

from ._fixtures_upstream_faults import (
    GPT,
    KEY,
    LLAMA,
    Kind,
    Outcome,
    Shot,
    StreamEnd,
    first_served_by,
    markers_in,
    mixed_shots,
    run_load,
    summary,
)

LLAMA_TIMEOUT_S = 0.5
COOLDOWN_S = 0.3
MARGIN_S = 5.0  # generous: the bound catches hangs, it is not a latency target
# LiteLLM costs several times more CPU per request than the pass-through: fewer requests suffice
# to load it, and keep the module's run short.
REQUESTS = {"openai": 240, "litellm": 80}
CONCURRENCY = 24
MIXED = (
    Kind.PUBLIC,
    Kind.CONFIDENTIAL,
    Kind.PUBLIC,
    Kind.PINNED,
    Kind.PUBLIC,
    Kind.PII,
    Kind.PUBLIC,
)


@dataclasses.dataclass
class Rig:
    host: ThreadedUpstreams
    llama: LoopbackUpstream
    gpt: LoopbackUpstream
    router: RouterProcess
    adapter: str  # how the router calls llama: "openai" (pass-through) or "litellm"
    llama_port: int  # kept: a stopped upstream has no port, and its successor reuses this one

    def stop_llama(self) -> None:
        self.host.stop(self.llama)

    def restart_llama(self) -> None:
        """A new llama process on the same port (its received requests start empty)."""
        self.llama = self.host.start(LLAMA, port=self.llama_port)

    def received(self) -> Received:
        return Received(
            counts={LLAMA: len(self.llama.received), GPT: len(self.gpt.received)},
            gpt_markers=markers_in(self.gpt.received),
        )


@dataclasses.dataclass(frozen=True)
class Received:
    """What the upstreams had received when the load ended (before healing probes)."""

    counts: dict[str, int]
    gpt_markers: list[str]


def router_config(llama_base: str, gpt_base: str, adapter: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(llama_base, timeout_s=LLAMA_TIMEOUT_S, adapter=adapter),
            external_gpt4o(
                gpt_base,
                api_key="sk-test",
                input_usd_per_mtok=2.5,
                output_usd_per_mtok=10,
                timeout_s=10,
            ),
        ],
        tenants=[{"name": "team", "api_keys": [KEY], "default_data_class": "internal"}],
        cooldown={"failures": 3, "seconds": COOLDOWN_S},
    )


@pytest.fixture(scope="module", params=["openai", "litellm"])
def module_rig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    """llama behind the direct pass-through adapter, then behind LiteLLM (as a provider that
    needs translation would be)."""
    host = ThreadedUpstreams()
    try:
        llama, gpt = host.start(LLAMA), host.start(GPT)
        directory = tmp_path_factory.mktemp("upstream-faults")
        config = directory / "router.yaml"
        config.write_text(router_config(llama.base_url, gpt.base_url, request.param))
        router = start_router_process(
            ["--config", str(config), "--scrape-interval", "0"], directory / "router.log"
        )
        try:
            yield Rig(
                host=host,
                llama=llama,
                gpt=gpt,
                router=router,
                adapter=request.param,
                llama_port=llama.port,
            )
        finally:
            router.stop()
    finally:
        host.close()


@pytest.fixture
async def rig(module_rig: Rig) -> Rig:
    """The module's rig with llama healthy, in rotation, and nothing recorded yet."""
    module_rig.llama.reset()
    module_rig.gpt.reset()
    back = await first_served_by(
        module_rig.router, LLAMA, Kind.PUBLIC, within_s=COOLDOWN_S + MARGIN_S
    )
    assert back is not None, "llama is not serving at the start of the test"
    module_rig.llama.reset()
    module_rig.gpt.reset()
    return module_rig


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Rig], None]
    heal: Callable[[Rig], None]
    streams: str = "mixed"  # "mixed" (every other request streams) or "all"


def clear_faults(rig: Rig) -> None:
    rig.llama.reset()  # faults cleared, behaviour back to a fast answer


def set_faults(**faults: object) -> Callable[[Rig], None]:
    def inject(rig: Rig) -> None:
        for name, value in faults.items():
            setattr(rig.llama.faults, name, value)

    return inject


def set_behaviour(**behaviour: float) -> Callable[[Rig], None]:
    def inject(rig: Rig) -> None:
        for name, value in behaviour.items():
            setattr(rig.llama.behaviour, name, value)

    return inject


FALLBACK_FAULTS = [
    Fault("connection refused", Rig.stop_llama, Rig.restart_llama),
    Fault("connection reset", set_faults(drop_connection=True), clear_faults),
    Fault("timeout", set_faults(hang=True), clear_faults),
    Fault("HTTP 500", set_faults(status=500), clear_faults),
    Fault("HTTP 503", set_faults(status=503), clear_faults),
    Fault("HTTP 429 with Retry-After", set_faults(status=429, retry_after_s=5), clear_faults),
    # The router's key for the backend refused (expired, rotated): not the client's key.
    Fault("HTTP 401", set_faults(status=401), clear_faults),
    Fault(
        "stream cut before its first event",
        set_faults(fail_stream_after_events=0),
        clear_faults,
        "all",
    ),
    Fault(
        "stream's first event later than the timeout",
        set_behaviour(ttft_s=LLAMA_TIMEOUT_S * 4),
        clear_faults,
        "all",
    ),
]
MIDSTREAM_FAULTS = [
    Fault("stream cut mid-way", set_faults(fail_stream_after_events=2), clear_faults, "all"),
    Fault(
        "stream stalled mid-way",
        set_behaviour(token_delay_s=LLAMA_TIMEOUT_S * 4),  # silent after its first event
        clear_faults,
        "all",
    ),
]


async def load_heal_and_report(
    rig: Rig, fault: Fault, shots: list[Shot]
) -> tuple[list[Outcome], Received, float | None]:
    """Run `shots` under `fault`, heal it, and time how long until llama serves again."""
    fault.inject(rig)
    outcomes = await run_load(rig.router, shots, CONCURRENCY)
    received = rig.received()
    fault.heal(rig)
    recovery_s = await first_served_by(
        rig.router, LLAMA, Kind.PUBLIC, within_s=COOLDOWN_S + MARGIN_S
    )
    name = f"{rig.adapter} | {fault.name}"
    print("\n" + summary(name, outcomes, LLAMA_TIMEOUT_S, received.counts, recovery_s))
    return outcomes, received, recovery_s


def assert_served_by(outcome: Outcome, backend: str) -> None:
    assert outcome.served, outcome
    assert outcome.backend == backend, outcome


def assert_service_unavailable(outcome: Outcome) -> None:
    assert outcome.status == 503, outcome
    assert outcome.error_type == "service_unavailable", outcome
    assert outcome.error_code == "no_eligible_backend", outcome
    assert outcome.error_message, outcome


def assert_only_public_left_the_cluster(received: Received, outcomes: list[Outcome]) -> None:
    on_gpt = sorted(o.shot.marker for o in outcomes if o.backend == GPT)
    assert sorted(received.gpt_markers) == on_gpt  # each exactly once
    assert all(o.shot.kind is Kind.PUBLIC for o in outcomes if o.backend == GPT)


def assert_no_hang(outcomes: list[Outcome]) -> None:
    slowest = max(outcomes, key=lambda outcome: outcome.wall_s)
    assert slowest.wall_s < LLAMA_TIMEOUT_S + MARGIN_S, slowest
    assert all(outcome.status != 0 for outcome in outcomes)  # the client never gave up


@pytest.mark.parametrize("fault", FALLBACK_FAULTS, ids=lambda fault: fault.name)
async def test_a_failing_preferred_backend_falls_back_or_fails_clearly_and_recovers(
    rig: Rig, fault: Fault
) -> None:
    shots = mixed_shots(REQUESTS[rig.adapter], MIXED, streams=fault.streams)
    outcomes, received, recovery_s = await load_heal_and_report(rig, fault, shots)

    public = [o for o in outcomes if o.shot.kind.may_fall_back]
    for outcome in public:
        assert_served_by(outcome, GPT)
        assert outcome.content == rig.gpt.behaviour.reply_text, outcome
    for outcome in outcomes:
        if not outcome.shot.kind.may_fall_back:
            assert_service_unavailable(outcome)
    assert_only_public_left_the_cluster(received, outcomes)
    assert_no_hang(outcomes)
    # The cooldown took llama out of rotation: some requests no longer tried it at all.
    assert any(not o.fell_back for o in public)
    assert any("health:cooldown" in o.error_message for o in outcomes)
    assert recovery_s is not None, "llama healed but got no traffic back"


@pytest.mark.parametrize("fault", MIDSTREAM_FAULTS, ids=lambda fault: fault.name)
async def test_a_stream_failing_midway_ends_with_an_error_event_and_never_continues_elsewhere(
    rig: Rig, fault: Fault
) -> None:
    shots = mixed_shots(REQUESTS[rig.adapter], (Kind.PUBLIC, Kind.CONFIDENTIAL), streams="all")
    outcomes, received, recovery_s = await load_heal_and_report(rig, fault, shots)

    interrupted = [o for o in outcomes if o.stream_end is StreamEnd.INTERRUPTED]
    assert interrupted, "no stream failed"
    for outcome in interrupted:
        assert (outcome.status, outcome.backend) == (200, LLAMA), outcome
        assert (outcome.error_type, outcome.error_code) == ("upstream_error", "stream_interrupted")
        assert rig.gpt.behaviour.reply_text.startswith(outcome.content)  # what arrived, no more
    for outcome in outcomes:
        if outcome.stream_end is StreamEnd.INTERRUPTED:
            continue
        if outcome.shot.kind.may_fall_back:
            assert_served_by(outcome, GPT)  # tried while llama was in cooldown
        else:
            assert_service_unavailable(outcome)
    assert not any(o.stream_end is StreamEnd.TRUNCATED for o in outcomes)
    assert_only_public_left_the_cluster(received, outcomes)
    assert_no_hang(outcomes)
    assert recovery_s is not None, "llama healed but got no traffic back"


async def test_a_slow_stream_that_keeps_sending_is_served_whole_without_fallback(rig: Rig) -> None:
    slow = Fault("slow stream", set_behaviour(token_delay_s=LLAMA_TIMEOUT_S / 10), clear_faults)
    kinds = (Kind.PUBLIC, Kind.CONFIDENTIAL, Kind.PINNED)
    shots = mixed_shots(REQUESTS[rig.adapter] // 2, kinds, streams="all")
    outcomes, received, _ = await load_heal_and_report(rig, slow, shots)

    for outcome in outcomes:
        assert_served_by(outcome, LLAMA)
        assert not outcome.fell_back, outcome
        assert outcome.content == rig.llama.behaviour.reply_text
    assert received.counts == {LLAMA: len(shots), GPT: 0}
    assert_no_hang(outcomes)
