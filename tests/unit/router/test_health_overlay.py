"""Live health laid over catalog snapshots keeps every other field of the snapshot."""

from __future__ import annotations

import dataclasses

from modelplane.router.policy.types import BackendSnapshot, Capability, Location
from modelplane.router.service import _overlay
from modelplane.router.state import BackendHealth


def test_overlay_changes_only_the_live_fields() -> None:
    snapshot = BackendSnapshot(
        name="llama",
        location=Location.IN_CLUSTER,
        capabilities=frozenset({Capability.CHAT, Capability.JSON}),
        context_window=8192,
        input_usd_per_mtok=0.1,
        output_usd_per_mtok=0.2,
        ready=False,
    )
    overlaid = _overlay(snapshot, BackendHealth(in_cooldown=True, predicted_ttft_ms=42.0))
    expected = dataclasses.replace(snapshot, in_cooldown=True, predicted_ttft_ms=42.0)
    assert overlaid == expected
    assert {f.name for f in dataclasses.fields(BackendSnapshot)} == {
        "name",
        "location",
        "capabilities",
        "context_window",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "ready",
        "in_cooldown",
        "predicted_ttft_ms",
    }, "a new BackendSnapshot field must be copied in service._overlay"


def test_overlay_returns_the_same_snapshot_when_health_adds_nothing() -> None:
    snapshot = BackendSnapshot(
        name="gpt-4o",
        location=Location.EXTERNAL,
        capabilities=frozenset(Capability),
        context_window=128000,
        input_usd_per_mtok=2.5,
        output_usd_per_mtok=10.0,
    )
    assert _overlay(snapshot, None) is snapshot
    assert _overlay(snapshot, BackendHealth()) is snapshot
