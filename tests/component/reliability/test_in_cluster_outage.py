"""The in-cluster model goes away under a mixed load and comes back, on the real router process.

Sixteen clients send a steady mix of public, confidential and PII-carrying requests (half of them
streamed) while the in-cluster llama upstream is stopped for three seconds and then restarted on
the same port. The router scrapes llama's metrics every 0.2 s, as it does in a cluster, so it
learns that no replica answers both from failed attempts (cooldown) and from the scrape
(`health:no-ready-replica`).

What must hold, per docs/policy.md: public requests spill to the external GPT-4o and are all
served; confidential and PII-carrying ones never leave the cluster (checked on what the GPT-4o
upstream actually received: how many requests, and their text). They get `503
no_eligible_backend` while llama is in cooldown, or wait up to llama's timeout for a ready replica
and then get the 503, or are served if it comes back while they wait. Once llama is back, both
kinds return to it. Run with `-s` for the figures (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import ThreadedUpstreams, start_router_process

from ._fixtures_upstream_faults import (
    GPT,
    KEY,
    LLAMA,
    PII_EMAIL,
    Kind,
    Outcome,
    StreamEnd,
    error_codes,
    markers_in,
    run_until_stopped,
)

LLAMA_TIMEOUT_S = 1.0
COOLDOWN_S = 1.0
SCRAPE_INTERVAL_S = 0.2
OUTAGE_S = 3.0
MARGIN_S = 3.0  # generous: the bound catches hangs, it is not a latency target
KINDS = (Kind.PUBLIC, Kind.CONFIDENTIAL, Kind.PUBLIC, Kind.PII)


def router_config(llama_base: str, gpt_base: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(llama_base, timeout_s=LLAMA_TIMEOUT_S),
            external_gpt4o(
                gpt_base, api_key="sk-test", input_usd_per_mtok=2.5, output_usd_per_mtok=10
            ),
        ],
        tenants=[{"name": "team", "api_keys": [KEY], "default_data_class": "internal"}],
        policy={"pii_detection": True},
        cooldown={"failures": 3, "seconds": COOLDOWN_S},
    )


def phase_of(outcome: Outcome, killed: float, healed: float) -> str:
    if outcome.started + outcome.wall_s < killed:
        return "before"
    return "outage" if outcome.started < healed else "after"


def why_unavailable(outcome: Outcome) -> str:
    """Which documented path gave a 503: a failed attempt, the cooldown, or no ready replica."""
    if outcome.error_message.startswith("every eligible backend failed"):
        return "attempt_failed"
    for reason in ("health:cooldown", "health:no-ready-replica"):
        if reason in outcome.error_message:
            return reason.removeprefix("health:")
    return outcome.error_message


def figures(outcomes: list[Outcome], killed: float, healed: float) -> str:
    lines = []
    for phase in ("before", "outage", "after"):
        for may_leave, label in ((True, "public"), (False, "confidential+pii")):
            chosen = [
                o
                for o in outcomes
                if phase_of(o, killed, healed) == phase and o.shot.kind.may_fall_back is may_leave
            ]
            served = collections.Counter(o.backend for o in chosen if o.served)
            unavailable = collections.Counter(why_unavailable(o) for o in chosen if o.status == 503)
            lines.append(
                f"  {phase:<6} {label:<16} sent={len(chosen)} served_by={dict(served)} "
                f"errors={error_codes(chosen)} 503_because={dict(unavailable)}"
            )
    return "\n".join(lines)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def seconds_until_served_by_llama(outcomes: list[Outcome], healed: float) -> float | None:
    """From llama's restart until the first of these requests was answered by it."""
    ends = [
        o.started + o.wall_s
        for o in outcomes
        if o.served and o.backend == LLAMA and o.started + o.wall_s > healed
    ]
    return min(ends) - healed if ends else None


async def test_public_spills_and_confidential_never_leaves_while_the_in_cluster_model_is_gone(
    tmp_path: Path,
) -> None:
    host = ThreadedUpstreams()
    try:
        llama, gpt = host.start(LLAMA), host.start(GPT)
        config = tmp_path / "router.yaml"
        config.write_text(router_config(llama.base_url, gpt.base_url))
        router = start_router_process(
            ["--config", str(config), "--scrape-interval", str(SCRAPE_INTERVAL_S)],
            tmp_path / "router.log",
        )
        stop = asyncio.Event()
        load = asyncio.create_task(
            run_until_stopped(router, KINDS, stop, workers=16, pause_s=0.05, max_requests=4000)
        )
        try:
            await asyncio.sleep(0.5)
            port = llama.port
            killed = time.monotonic()
            host.stop(llama)
            await asyncio.sleep(OUTAGE_S)
            healed = time.monotonic()
            restarted = host.start(LLAMA, port=port)
            back_bound_s = LLAMA_TIMEOUT_S + COOLDOWN_S + MARGIN_S
            for _ in range(int(back_bound_s / 0.05)):  # until confidential traffic is back
                if any(not m.startswith("[public-") for m in markers_in(restarted.received)):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # some traffic after the recovery
            stop.set()
            outcomes = await asyncio.wait_for(load, timeout=LLAMA_TIMEOUT_S + MARGIN_S * 2)
            gpt_received = list(gpt.received)
            llama_received = len(llama.received) + len(restarted.received)
        finally:
            load.cancel()
            router.stop()
    finally:
        host.close()

    kept = [o for o in outcomes if not o.shot.kind.may_fall_back]
    public = [o for o in outcomes if o.shot.kind.may_fall_back]
    # Waited for a ready replica during the outage and were answered by llama once it was back.
    waited_then_served = [
        o
        for o in kept
        if o.served and o.backend == LLAMA and killed < o.started < healed < o.started + o.wall_s
    ]
    confidential_back_s = seconds_until_served_by_llama(kept, healed)
    public_back_s = seconds_until_served_by_llama(public, healed)
    kept_markers = {o.shot.marker for o in kept}
    kept_at_gpt = [m for m in markers_in(gpt_received) if m in kept_markers]
    print(
        f"\nin-cluster outage ({OUTAGE_S:g} s): sent={len(outcomes)} "
        f"public={len(public)} confidential+pii={len(kept)} "
        f"received llama={llama_received} gpt-4o={len(gpt_received)} "
        f"confidential_or_pii_at_gpt-4o={len(kept_at_gpt)} "
        f"waited_then_served={len(waited_then_served)} "
        f"max_wall_s={max(o.wall_s for o in outcomes):.2f} (llama timeout {LLAMA_TIMEOUT_S:g} s) "
        f"confidential_back_after_s={seconds(confidential_back_s)} "
        f"public_back_after_s={seconds(public_back_s)}\n" + figures(outcomes, killed, healed)
    )

    # Public requests spill and are all served; only a stream under way at the kill may break.
    for outcome in public:
        in_flight_at_kill = outcome.started < killed < outcome.started + outcome.wall_s
        if in_flight_at_kill and outcome.stream_end is StreamEnd.INTERRUPTED:
            continue
        assert outcome.served, outcome
    assert any(o.backend == GPT for o in public)
    # Confidential and PII-carrying requests never leave: served in the cluster, or a clean 503.
    for outcome in kept:
        assert outcome.backend != GPT, outcome
        if not outcome.served and outcome.stream_end is not StreamEnd.INTERRUPTED:
            assert (outcome.status, outcome.error_type, outcome.error_code) == (
                503,
                "service_unavailable",
                "no_eligible_backend",
            ), outcome
    assert any(o.status == 503 for o in kept)
    # What GPT-4o received: exactly the public requests it served, none of the others' text.
    assert sorted(markers_in(gpt_received)) == sorted(
        o.shot.marker for o in public if o.backend == GPT
    )
    received_text = " ".join(str(request.body) for request in gpt_received)
    assert PII_EMAIL not in received_text
    assert "[confidential-" not in received_text
    assert "[pii-" not in received_text
    # Requests that waited for a ready replica were served when llama came back.
    assert waited_then_served
    # Both kinds went back to llama, and nothing hung.
    assert kept_at_gpt == []
    assert confidential_back_s is not None
    assert public_back_s is not None
    assert max(o.wall_s for o in outcomes) < LLAMA_TIMEOUT_S + MARGIN_S
    assert all(o.status != 0 for o in outcomes)
