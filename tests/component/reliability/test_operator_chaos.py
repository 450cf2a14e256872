"""The operator, a real `modelplane operator run` process, SIGKILLed 20 times in mid-reconcile.

ModelDeployments are created, changed (between variants with different child sets) and deleted
around every start of the operator; each time, after a seeded random delay once it is busy, the
process is killed without any chance to finish. After every kill no ModelDeployment may have two
children of one kind, and every child must belong to a ModelDeployment that exists (the emulator
stands in for the garbage collector, including for children written after their owner went; a
deleted ModelDeployment's children stay until the operator removes kopf's finalizer from it).
Finally one more operator, left running, must converge: every ModelDeployment has exactly the
children its spec asks for and a status for its current generation.

About 60 s: twenty starts of a Python process that imports kopf and the Kubernetes client.
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelplane.operator.builders import CHILD_KINDS, OWNER_LABEL, build_children
from modelplane.operator.reconcile import ReconcileOptions
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment
from modelplane.testing.kube import EmulatedCluster, wait_for
from modelplane.testing.operator import model_deployment, running_operator
from modelplane.testing.processes import stop_process

SEED = 7
KILLS = 20
NAMES = tuple(f"md-{index}" for index in range(6))
NAMESPACE = "chaos"
RESYNC_S = 2.0
STANDBYS = 2  # operators imported ahead, so a restart does not wait for the imports
MAX_KILL_DELAY_S = 0.5  # after the operator's first reconcile activity
AUTOSCALING = {"minReplicas": 1, "maxReplicas": 3, "targetQueueDepth": 4}
# Spec variants with different sets of children: PDB (2 replicas), HPA + PDB, Triton's ConfigMap.
VARIANTS: tuple[dict[str, Any], ...] = (
    {"replicas": 1, "autoscaling": None, "engine": {"name": "vllm"}},
    {"replicas": 2, "autoscaling": None, "engine": {"name": "vllm"}},
    {"replicas": 1, "autoscaling": AUTOSCALING, "engine": {"name": "vllm"}},
    {"replicas": 1, "autoscaling": None, "engine": {"name": "triton"}},
)
WATCHED_KINDS = [child.kind for child in CHILD_KINDS if child.kind != "ScaledObject"]
FAST = ReconcileOptions(resync_seconds=RESYNC_S, retry_delay_seconds=0.5)
ACTIVITY = ("modelplane.operator", "Handler '")  # log lines of a reconcile under way or done


# Imports what the operator needs, then waits for a line on stdin before it runs the real
# `modelplane operator run`: the next operators are imported while the current one works, so
# the 20 restarts do not each wait ~2 s for kopf and the Kubernetes client to import.
_STANDBY = (
    "import sys, kopf, kubernetes, modelplane.operator.handlers, modelplane.cli; "
    "sys.stdin.readline(); raise SystemExit(modelplane.cli.main(sys.argv[1:]))"
)


class OperatorProcess:
    """`modelplane operator run` for one namespace of the emulator, logging to a file.

    It starts as a standby, imported but idle, until `run()`.
    """

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.log_path = log_path
        command = [sys.executable, "-c", _STANDBY, "operator", "run", "-n", NAMESPACE]
        command += ["--resync-seconds", str(RESYNC_S)]
        environ = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
            )

    def run(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_busy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited:\n{self.log()}")
            if any(marker in self.log() for marker in ACTIVITY):
                return
            time.sleep(0.02)
        raise AssertionError(f"the operator did nothing within {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        if self.process.poll() is None:
            stop_process(self.process, timeout_s=10)


class Workload:
    """Seeded creates, spec changes and deletes over a small pool of ModelDeployment names."""

    def __init__(self, cluster: EmulatedCluster, rng: random.Random) -> None:
        self.cluster, self.kube, self.rng = cluster, cluster.client(), rng
        self.existing: dict[str, int] = {}  # name -> variant index, not being deleted
        self.counts: collections.Counter[str] = collections.Counter()

    def step(self) -> None:
        # A deleted ModelDeployment stays until the operator removes its finalizer (kopf's, for
        # the resync timer); its name cannot be taken again before.
        stored = {md["metadata"]["name"] for md in self.cluster.objects("ModelDeployment")}
        absent = [name for name in NAMES if name not in stored]
        choices = (["create"] if absent else []) + (["update", "delete"] if self.existing else [])
        action = self.rng.choice(choices)
        self.counts[action] += 1
        if action == "create":
            name, variant = self.rng.choice(absent), self.rng.randrange(len(VARIANTS))
            spec = {key: value for key, value in VARIANTS[variant].items() if value is not None}
            self.kube.create(model_deployment(name, NAMESPACE, spec))
            self.existing[name] = variant
        elif action == "update":
            name = self.rng.choice(sorted(self.existing))
            variant = self.rng.choice(
                [index for index in range(len(VARIANTS)) if index != self.existing[name]]
            )
            self.kube.patch("ModelDeployment", NAMESPACE, name, {"spec": VARIANTS[variant]})
            self.existing[name] = variant
        else:
            name = self.rng.choice(sorted(self.existing))
            self.kube.delete("ModelDeployment", NAMESPACE, name)
            del self.existing[name]


def children_by_owner(
    cluster: EmulatedCluster,
) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """Children grouped by owner uid then kind, and every child that has no live owner."""
    owners = {md["metadata"]["uid"]: md for md in cluster.objects("ModelDeployment", NAMESPACE)}
    grouped: dict[str, dict[str, list[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    orphans: list[str] = []
    for kind in WATCHED_KINDS:
        for child in cluster.objects(kind, NAMESPACE, label_selector=OWNER_LABEL):
            meta = child["metadata"]
            controllers = [
                ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")
            ]
            owner = owners.get(controllers[0]["uid"]) if len(controllers) == 1 else None
            if owner is None or owner["metadata"]["name"] != meta["labels"][OWNER_LABEL]:
                orphans.append(f"{kind} {meta['name']}")
                continue
            grouped[owner["metadata"]["uid"]][kind].append(meta["name"])
    return grouped, orphans


def duplicates(grouped: dict[str, dict[str, list[str]]]) -> list[str]:
    return [
        f"{kind} {names}"
        for kinds in grouped.values()
        for kind, names in kinds.items()
        if len(names) > 1
    ]


def unconverged(cluster: EmulatedCluster) -> list[str]:
    """What still differs from the converged state (empty once converged)."""
    grouped, orphans = children_by_owner(cluster)
    found = [f"orphaned {orphan}" for orphan in orphans]
    settings = OperatorSettings()
    for body in cluster.objects("ModelDeployment", NAMESPACE):
        meta = body["metadata"]
        name = meta["name"]
        if meta.get("deletionTimestamp"):
            found.append(f"{name} deleted, but its finalizer is still there")
            continue
        observed = (body.get("status") or {}).get("observedGeneration")
        if observed != meta["generation"]:
            found.append(f"{name} generation {meta['generation']}, status for {observed}")
        wanted = {
            (child["kind"], child["metadata"]["name"])
            for child in build_children(ModelDeployment.from_body(body), settings)
        }
        present = {(kind, name) for kind, names in grouped[meta["uid"]].items() for name in names}
        if present != wanted:
            found.append(f"{name} missing {wanted - present}, unwanted {present - wanted}")
    return found


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


@pytest.mark.timeout(300)
def test_operator_killed_20_times_mid_reconcile_converges_without_duplicates_or_orphans(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    rng = random.Random(SEED)
    workload = Workload(cluster, rng)
    for _ in range(4):
        workload.step()
    started = time.monotonic()
    problems: list[str] = []
    logs = (tmp_path / f"operator-{index}.log" for index in itertools.count())
    standbys = collections.deque(OperatorProcess(kubeconfig, next(logs)) for _ in range(STANDBYS))
    try:
        for kill in range(1, KILLS + 1):
            workload.step()  # changes waiting for the operator when it starts ...
            operator = standbys.popleft()
            operator.run()
            standbys.append(OperatorProcess(kubeconfig, next(logs)))
            try:
                operator.wait_until_busy()
                workload.step()  # ... and one arriving while it reconciles
                time.sleep(rng.uniform(0, MAX_KILL_DELAY_S))
                operator.kill()
            finally:
                operator.stop()
            grouped, orphans = children_by_owner(cluster)
            problems += [f"after kill {kill}: duplicate {d}" for d in duplicates(grouped)]
            problems += [f"after kill {kill}: orphaned {o}" for o in orphans]
        chaos_s = time.monotonic() - started
        final = standbys.popleft()
    finally:
        for standby in standbys:
            standby.stop()

    try:
        workload.step()  # work for the last operator too
        final.run()
        restarted = time.monotonic()
        deadline = restarted + 60
        while unconverged(cluster) and time.monotonic() < deadline:
            time.sleep(0.1)
        convergence_s = time.monotonic() - restarted
        assert not unconverged(cluster), f"no convergence within 60 s:\n{final.log()[-3000:]}"
    finally:
        final.stop()

    grouped, orphans = children_by_owner(cluster)
    children = sum(len(names) for kinds in grouped.values() for names in kinds.values())
    print(
        f"\noperator SIGKILLed {KILLS} times in {chaos_s:.1f} s (seed {SEED}) during "
        f"{dict(workload.counts)} ModelDeployment changes; duplicates/orphans found after the "
        f"kills: {len(problems)}; the last operator converged {len(workload.existing)} "
        f"ModelDeployments ({children} children) in {convergence_s:.1f} s from its start"
    )
    assert problems == []
    assert duplicates(grouped) == []
    assert orphans == []


def test_a_create_pass_cut_short_then_a_spec_change_leaves_no_child_of_the_old_spec(
    cluster: EmulatedCluster,
) -> None:
    """What a kill can leave behind, made on purpose: an operator applied the children of a new
    ModelDeployment and died before kopf recorded the creation as handled; the spec then changed.
    The next operator sees a creation again, and must still prune what the old spec asked for."""
    kube = cluster.client()
    created = kube.create(model_deployment("llama", NAMESPACE, {"autoscaling": AUTOSCALING}))
    for child in build_children(ModelDeployment.from_body(created), OperatorSettings()):
        kube.create(child)  # the killed operator's work: an HPA and a PDB among them
    kube.patch("ModelDeployment", NAMESPACE, "llama", {"spec": {"autoscaling": None}})

    with running_operator(cluster.url, namespaces=(NAMESPACE,), options=FAST):
        wait_for(
            lambda: (
                (kube.get("ModelDeployment", NAMESPACE, "llama") or {})
                .get("status", {})
                .get("observedGeneration")
                == 2
            ),
            what="status for generation 2",
        )
        wait_for(
            lambda: (
                kube.get("HorizontalPodAutoscaler", NAMESPACE, "llama") is None
                and kube.get("PodDisruptionBudget", NAMESPACE, "llama") is None
            ),
            timeout=5,
            what="the old spec's HPA and PDB pruned",
        )
    assert unconverged(cluster) == []
