"""Autoscaling children: an HPA, or a KEDA ScaledObject where KEDA is on; pruned when unwanted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from modelplane.operator.reconcile import ReconcileOptions
from modelplane.operator.settings import KedaSettings, OperatorSettings

from modelplane.testing.kube import KEDA_SCALED_OBJECT, EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import model_deployment, running_operator

AUTOSCALING = {"autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetQueueDepth": 4}}


def test_autoscaling_gets_an_hpa_and_losing_it_prunes_the_hpa(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(model_deployment("llama", namespace, AUTOSCALING))

    hpa = wait_for(lambda: kube.get("HorizontalPodAutoscaler", namespace, "llama"), what="an HPA")
    wait_for(lambda: kube.get("PodDisruptionBudget", namespace, "llama"), what="a PDB")
    assert hpa["spec"]["maxReplicas"] == 3

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"autoscaling": None}})

    wait_for(
        lambda: (
            kube.get("HorizontalPodAutoscaler", namespace, "llama") is None
            and kube.get("PodDisruptionBudget", namespace, "llama") is None
        ),
        what="the HPA and PDB pruned",
    )
    deployment = kube.get("Deployment", namespace, "llama")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1  # the replica count is the operator's again


def test_turning_autoscaling_on_keeps_the_replicas_running_for_the_autoscaler(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(model_deployment("scaled", namespace, {"replicas": 3}))
    wait_for(
        lambda: (
            (kube.get("Deployment", namespace, "scaled") or {}).get("spec", {}).get("replicas") == 3
        ),
        what="a Deployment of 3 replicas",
    )

    patched = kube.patch("ModelDeployment", namespace, "scaled", {"spec": AUTOSCALING})

    def reconciled() -> bool:
        md = kube.get("ModelDeployment", namespace, "scaled") or {}
        observed = md.get("status", {}).get("observedGeneration")
        return bool(observed == patched["metadata"]["generation"])

    wait_for(reconciled, what="the autoscaling spec reconciled")
    assert kube.get("HorizontalPodAutoscaler", namespace, "scaled") is not None
    deployment = kube.get("Deployment", namespace, "scaled")
    assert deployment is not None
    # The operator stopped applying the count; left without an owner it would go back to its
    # default of 1, stopping two GPU pods until the HPA scaled up again.
    assert deployment["spec"]["replicas"] == 3


@pytest.fixture(scope="module")
def keda_cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(extra_kinds=(KEDA_SCALED_OBJECT,)) as running:
        yield running


def test_with_keda_on_autoscaling_gets_a_scaled_object_instead(
    keda_cluster: EmulatedCluster, namespace: str, fast_options: ReconcileOptions
) -> None:
    kube = keda_cluster.client()
    settings = OperatorSettings(keda=KedaSettings(enabled=True))
    with running_operator(keda_cluster.url, settings=settings, options=fast_options):
        kube.create(model_deployment("llama", namespace, AUTOSCALING))

        scaled = wait_for(
            lambda: kube.get("ScaledObject", namespace, "llama"), what="a ScaledObject"
        )
        assert kube.get("HorizontalPodAutoscaler", namespace, "llama") is None
        assert scaled["spec"]["maxReplicaCount"] == 3

        kube.patch("ModelDeployment", namespace, "llama", {"spec": {"autoscaling": None}})
        wait_for(
            lambda: kube.get("ScaledObject", namespace, "llama") is None,
            what="the ScaledObject pruned",
        )


def test_a_creation_cut_short_before_a_settings_change_leaves_no_child_of_the_old_settings(
    keda_cluster: EmulatedCluster, namespace: str, fast_options: ReconcileOptions
) -> None:
    kube = keda_cluster.client()
    with running_operator(keda_cluster.url, options=fast_options):  # KEDA off: an HPA
        kube.create(model_deployment("llama", namespace, AUTOSCALING))
        wait_for(lambda: kube.get("HorizontalPodAutoscaler", namespace, "llama"), what="an HPA")
    # As if that operator had been killed before kopf recorded the creation as handled: the
    # next operator runs the creation handler again, at generation 1.
    annotations = kube.get("ModelDeployment", namespace, "llama")["metadata"]["annotations"]
    kopf_state = {key: None for key in annotations if key.startswith("kopf.zalando.org/")}
    assert kopf_state, "kopf recorded nothing to forget"
    kube.patch("ModelDeployment", namespace, "llama", {"metadata": {"annotations": kopf_state}})
    assert kube.get("ModelDeployment", namespace, "llama")["metadata"]["generation"] == 1

    settings = OperatorSettings(keda=KedaSettings(enabled=True))
    with running_operator(keda_cluster.url, settings=settings, options=fast_options):
        wait_for(lambda: kube.get("ScaledObject", namespace, "llama"), what="a ScaledObject")
        wait_for(
            lambda: kube.get("HorizontalPodAutoscaler", namespace, "llama") is None,
            what="the old settings' HPA pruned",
        )


def test_switching_from_an_hpa_to_keda_replaces_the_hpa_despite_kedas_webhook(
    keda_cluster: EmulatedCluster, namespace: str, fast_options: ReconcileOptions
) -> None:
    kube = keda_cluster.client()
    with running_operator(keda_cluster.url, options=fast_options):
        kube.create(model_deployment("llama", namespace, AUTOSCALING))
        wait_for(lambda: kube.get("HorizontalPodAutoscaler", namespace, "llama"), what="an HPA")

    # KEDA's webhook refuses a ScaledObject for a Deployment the old HPA still scales: the HPA
    # must go first, within the same pass.
    keda = OperatorSettings(keda=KedaSettings(enabled=True))
    with running_operator(keda_cluster.url, settings=keda, options=fast_options):
        wait_for(
            lambda: (
                kube.get("ScaledObject", namespace, "llama") is not None
                and kube.get("HorizontalPodAutoscaler", namespace, "llama") is None
            ),
            what="the HPA replaced by a ScaledObject",
        )
        status = (kube.get("ModelDeployment", namespace, "llama") or {}).get("status", {})
        reasons = {entry["reason"] for entry in status.get("conditions", [])}
        assert "ChildRejected" not in reasons
