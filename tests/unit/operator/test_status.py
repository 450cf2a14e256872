"""Status rules: phases and conditions from a Deployment's state, transition times that hold."""

from __future__ import annotations

from typing import Any

from modelplane.operator import status as rules

URL = "http://m.ns.svc.cluster.local:8000/v1"
SELECTOR = "app=m"


def _deployment(
    replicas: int, ready: int, *, updated: int | None = None, observed: int = 1, generation: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": replicas if updated is None else updated,
            "readyReplicas": ready,
        },
    }


def _status(
    deployment: dict[str, Any] | None, previous: dict[str, Any] | None = None, now: str = "T1"
) -> dict[str, Any]:
    return rules.model_deployment_status(
        previous, 3, deployment, url=URL, selector=SELECTOR, now=now
    )


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == type_)
    return found


def test_all_replicas_ready_after_rollout_is_ready() -> None:
    status = _status(_deployment(2, 2))

    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == 3
    assert status["url"] == URL
    assert status["selector"] == SELECTOR
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert _condition(status, "Ready")["status"] == "True"
    assert _condition(status, "Progressing")["reason"] == rules.ROLLOUT_COMPLETE
    assert _condition(status, "Degraded")["status"] == "False"


def test_a_rollout_in_flight_is_progressing_and_serves_while_a_replica_is_ready() -> None:
    status = _status(_deployment(2, 1, updated=1))

    assert status["phase"] == "Progressing"
    assert _condition(status, "Progressing")["reason"] == rules.ROLLING_OUT
    assert _condition(status, "Ready")["status"] == "True"


def test_an_unobserved_deployment_generation_is_still_rolling_out() -> None:
    status = _status(_deployment(1, 1, observed=1, generation=2))

    assert status["phase"] == "Progressing"


def test_replicas_still_starting_are_progressing_but_lost_ones_are_degraded() -> None:
    starting = _status(_deployment(2, 0), previous={"phase": "Progressing"})
    lost = _status(_deployment(2, 1), previous={"phase": "Ready"})

    assert starting["phase"] == "Progressing"
    assert _condition(starting, "Progressing")["reason"] == rules.WAITING_FOR_READY
    assert _condition(starting, "Ready")["reason"] == rules.NO_REPLICA_READY
    assert lost["phase"] == "Degraded"
    assert _condition(lost, "Degraded")["reason"] == rules.REPLICAS_UNAVAILABLE


def test_an_exceeded_progress_deadline_degrades() -> None:
    deployment = _deployment(1, 0, updated=0)
    deployment["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]

    status = _status(deployment)

    assert status["phase"] == "Degraded"
    assert _condition(status, "Degraded")["reason"] == rules.PROGRESS_DEADLINE_EXCEEDED


def test_scaled_to_zero_is_pending_and_not_ready() -> None:
    status = _status(_deployment(0, 0))

    assert status["phase"] == "Pending"
    assert _condition(status, "Ready")["reason"] == rules.SCALED_TO_ZERO


def test_a_missing_deployment_is_pending() -> None:
    status = _status(None)

    assert status["phase"] == "Pending"
    assert _condition(status, "Ready")["reason"] == rules.DEPLOYMENT_MISSING


def test_transition_time_holds_while_the_status_holds_and_moves_when_it_flips() -> None:
    first = _status(_deployment(2, 2), now="T1")
    still_ready = _status(_deployment(2, 1), previous=first, now="T2")
    not_ready = _status(_deployment(2, 0), previous=still_ready, now="T3")

    assert _condition(still_ready, "Ready")["lastTransitionTime"] == "T1"
    assert _condition(still_ready, "Degraded")["lastTransitionTime"] == "T2"
    assert _condition(not_ready, "Ready")["lastTransitionTime"] == "T3"


def test_invalid_spec_fails_with_the_reason_and_message() -> None:
    status = rules.invalid_spec_status(None, 4, "tensor must equal gpus", now="T1")

    assert status["phase"] == "Failed"
    assert status["observedGeneration"] == 4
    ready = _condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", rules.INVALID_SPEC)
    assert ready["message"] == "tensor must equal gpus"
    assert "url" not in status  # the running children, and their URL, are left as they were


def test_status_differs_only_when_a_written_field_changes() -> None:
    written = _status(_deployment(1, 1))

    assert not rules.status_differs({**written, "extra": 1}, written)
    assert rules.status_differs(written, {**written, "phase": "Degraded"})
    assert rules.status_differs(None, written)


def test_rejected_children_degrade_and_keep_the_other_conditions() -> None:
    base = _status(_deployment(1, 1))

    status = rules.degraded_status(
        None, base, 3, rules.CHILD_REJECTED, "PVC c: immutable", now="T9"
    )

    assert status["phase"] == "Degraded"
    degraded = _condition(status, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", rules.CHILD_REJECTED)
    assert degraded["message"] == "PVC c: immutable"
    assert _condition(status, "Ready") == _condition(base, "Ready")
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Progressing", "Degraded"]
