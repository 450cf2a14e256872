"""The operator's life cycle: stopped, changed behind its back, started again."""

from __future__ import annotations

from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import model_deployment, running_operator

from .conftest import create_and_wait_for_children, observed_status


def test_restarted_operator_converges_without_duplicates(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str, fast_options: ReconcileOptions
) -> None:
    scope = (namespace,)
    with running_operator(cluster.url, namespaces=scope, options=fast_options):
        create_and_wait_for_children(kube, namespace, "first")

    # While no operator runs: a spec change, a lost child, and a brand-new resource.
    kube.patch("ModelDeployment", namespace, "first", {"spec": {"replicas": 2}})
    kube.delete("Service", namespace, "first")
    kube.create(model_deployment("second", namespace))

    with running_operator(cluster.url, namespaces=scope, options=fast_options):
        wait_for(
            lambda: (
                observed_status(kube, namespace, "first").get("observedGeneration") == 2
                and observed_status(kube, namespace, "second").get("observedGeneration") == 1
            ),
            what="both resources reconciled after the restart",
        )
        wait_for(lambda: kube.get("Service", namespace, "first"), what="the lost Service back")

    deployments = kube.list("Deployment", namespace)
    services = kube.list("Service", namespace)
    assert sorted(d["metadata"]["name"] for d in deployments) == ["first", "second"]
    assert sorted(s["metadata"]["name"] for s in services) == ["first", "second"]
    first = next(d for d in deployments if d["metadata"]["name"] == "first")
    assert first["spec"]["replicas"] == 2
