"""The Kubernetes emulator keeps the API server's rules the operator and the router rely on."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from modelplane.testing.kube import ApiError, EmulatedCluster, KubeHttpClient


@pytest.fixture(scope="module")
def small_history_cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=0.2, retained_changes=5) as running:
        yield running


def _config_map(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"a": "1"},
    }


def _model(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1},
        "status": {"phase": "Ready"},
    }


def test_create_fills_server_metadata_and_refuses_duplicates(
    cluster: EmulatedCluster, namespace: str
) -> None:
    response = httpx.post(
        f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps",
        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    )
    assert response.status_code == 201
    meta = response.json()["metadata"]
    assert meta["namespace"] == namespace
    assert meta["uid"]
    assert meta["resourceVersion"]
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")

    again = httpx.post(
        f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps", json=_config_map("c", namespace)
    )
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"
    missing = httpx.get(f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps/nope")
    assert missing.status_code == 404
    assert missing.json()["kind"] == "Status"


def test_resource_version_moves_on_every_real_write_and_generation_only_on_spec(
    kube: KubeHttpClient, namespace: str
) -> None:
    created = kube.create(_model("m", namespace))
    assert "status" not in created  # the status subresource ignores status on create

    relabelled = kube.patch("ModelDeployment", namespace, "m", {"metadata": {"labels": {"x": "y"}}})
    same = kube.patch("ModelDeployment", namespace, "m", {"metadata": {"labels": {"x": "y"}}})
    rescaled = kube.patch("ModelDeployment", namespace, "m", {"spec": {"replicas": 3}})

    versions = [o["metadata"]["resourceVersion"] for o in (created, relabelled, same, rescaled)]
    assert versions[0] != versions[1]
    assert versions[1] == versions[2]  # a no-op write is no write
    assert versions[2] != versions[3]
    assert relabelled["metadata"]["generation"] == 1
    assert rescaled["metadata"]["generation"] == 2


def test_status_subresource_separates_status_from_the_object(
    kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(_model("m", namespace))

    main = kube.patch("ModelDeployment", namespace, "m", {"status": {"phase": "Ready"}})
    assert "status" not in main
    status = kube.patch(
        "ModelDeployment",
        namespace,
        "m",
        {"spec": {"replicas": 9}, "status": {"phase": "Ready"}},
        subresource="status",
    )
    assert status["status"] == {"phase": "Ready"}
    assert status["spec"]["replicas"] == 1
    assert status["metadata"]["generation"] == 1


def test_json_patch_test_failure_is_422(kube: KubeHttpClient, namespace: str) -> None:
    created = kube.create(_config_map("c", namespace))
    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/data/b", "value": "2"},
    ]
    with pytest.raises(ApiError) as failure:
        kube.patch("ConfigMap", namespace, "c", stale, content_type="application/json-patch+json")
    assert failure.value.code == 422

    fresh = [{**stale[0], "value": created["metadata"]["resourceVersion"]}, stale[1]]
    patched = kube.patch(
        "ConfigMap", namespace, "c", fresh, content_type="application/json-patch+json"
    )
    assert patched["data"] == {"a": "1", "b": "2"}


def test_put_with_a_stale_resource_version_conflicts(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    created = kube.create(_config_map("c", namespace))
    kube.patch("ConfigMap", namespace, "c", {"data": {"a": "2"}})
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps/c"

    response = httpx.put(url, json=created)

    assert response.status_code == 409


def test_server_side_apply_creates_then_drops_what_the_manager_stopped_applying(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps/c"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    first = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    first["data"] = {"a": "1", "b": "2"}
    params = {"fieldManager": "me", "force": "true"}

    created = httpx.patch(url, content=orjson.dumps(first), headers=headers, params=params)
    kube.patch("ConfigMap", namespace, "c", {"data": {"someone-else": "x"}})
    second = {**first, "data": {"a": "3"}}
    applied = httpx.patch(url, content=orjson.dumps(second), headers=headers, params=params)
    unnamed = httpx.patch(url, content=orjson.dumps(second), headers=headers)

    assert created.status_code == 200
    assert applied.json()["data"] == {"a": "3", "someone-else": "x"}
    assert unnamed.status_code == 400


def test_a_field_another_manager_also_applies_stays_when_one_stops_applying_it(
    cluster: EmulatedCluster, namespace: str
) -> None:
    # Kubernetes' documented hand-over: a second manager applies the field, then the first
    # drops it; the field keeps its value instead of going back to its default.
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps/shared"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}}

    def apply(manager: str, data: dict[str, str]) -> dict[str, str]:
        response = httpx.patch(
            url,
            content=orjson.dumps({**base, "data": data}),
            headers=headers,
            params={"fieldManager": manager, "force": "true"},
        )
        assert response.status_code in (200, 201)
        result: dict[str, str] = response.json().get("data", {})
        return result

    apply("owner", {"kept": "1", "dropped": "2"})
    apply("handover", {"kept": "1"})

    assert apply("owner", {}) == {"kept": "1"}


def test_namespaces_are_listed_and_secrets_store_string_data_as_base64(
    kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": namespace},
            "stringData": {"key": "value"},
        }
    )

    names = [ns["metadata"]["name"] for ns in kube.list("Namespace", None)]
    stored = kube.get("Secret", namespace, "s")

    assert namespace in names
    assert stored is not None
    assert "stringData" not in stored
    assert stored["data"] == {"key": base64.b64encode(b"value").decode()}


def test_finalizers_hold_a_deletion_until_released(kube: KubeHttpClient, namespace: str) -> None:
    blocked = _config_map("c", namespace)
    blocked["metadata"]["finalizers"] = ["example.com/hold"]
    kube.create(blocked)

    kube.delete("ConfigMap", namespace, "c")
    held = kube.get("ConfigMap", namespace, "c")
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]

    kube.patch("ConfigMap", namespace, "c", {"metadata": {"finalizers": None}})
    assert kube.get("ConfigMap", namespace, "c") is None


def test_deleting_an_owner_collects_its_dependents_unless_orphaned(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    for name in ("owner-a", "owner-b"):
        owner = kube.create(_model(name, namespace))
        child = _config_map(f"{name}-child", namespace)
        child["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "modelplane.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": name,
                "uid": owner["metadata"]["uid"],
            }
        ]
        kube.create(child)

    kube.delete("ModelDeployment", namespace, "owner-a")
    orphaning = httpx.delete(
        f"{cluster.url}/apis/modelplane.dev/v1alpha1/namespaces/{namespace}/modeldeployments/owner-b",
        params={"propagationPolicy": "Orphan"},
    )

    assert orphaning.status_code == 200
    assert kube.get("ConfigMap", namespace, "owner-a-child") is None
    assert kube.get("ConfigMap", namespace, "owner-b-child") is not None


def test_an_object_written_for_an_owner_that_is_gone_is_collected(
    kube: KubeHttpClient, namespace: str
) -> None:
    owner = kube.create(_model("owner", namespace))
    kept = _config_map("kept", namespace)
    late = _config_map("late", namespace)
    for child in (kept, late):
        child["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "modelplane.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "owner",
                "uid": owner["metadata"]["uid"],
            }
        ]
    kube.create(kept)
    kube.delete("ModelDeployment", namespace, "owner")

    kube.create(late)  # a controller that has not seen the deletion yet

    assert kube.get("ConfigMap", namespace, "kept") is None
    assert kube.get("ConfigMap", namespace, "late") is None


def test_list_filters_by_label_selector(kube: KubeHttpClient, namespace: str) -> None:
    kube.create(_config_map("a", namespace, app="x", tier="web"))
    kube.create(_config_map("b", namespace, app="y"))
    kube.create(_config_map("c", namespace))

    def names(selector: str) -> list[str]:
        return [o["metadata"]["name"] for o in kube.list("ConfigMap", namespace, selector)]

    assert names("app=x") == ["a"]
    assert names("app") == ["a", "b"]
    assert names("!app") == ["c"]
    assert names("app in (x, y),tier!=db") == ["a", "b"]
    assert names("app notin (x)") == ["b", "c"]


def _watch_lines(url: str, params: dict[str, str], count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", url, params={"watch": "true", **params}, timeout=10) as response:
        for line in response.iter_lines():
            if line:
                events.append(orjson.loads(line))
            if len(events) >= count:
                break
    return events


def test_watch_resumes_from_a_resource_version_and_follows_label_matches(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps"
    kube.create(_config_map("a", namespace, app="x"))
    listing = httpx.get(url).json()
    since = listing["metadata"]["resourceVersion"]
    kube.patch("ConfigMap", namespace, "a", {"data": {"a": "2"}})
    kube.patch("ConfigMap", namespace, "a", {"metadata": {"labels": {"app": "y"}}})
    kube.delete("ConfigMap", namespace, "a")

    everything = _watch_lines(url, {"resourceVersion": since}, 3)
    matching = _watch_lines(url, {"resourceVersion": since, "labelSelector": "app=x"}, 2)

    assert [e["type"] for e in everything] == ["MODIFIED", "MODIFIED", "DELETED"]
    # The object stopped matching the selector: to that watch, it is deleted.
    assert [e["type"] for e in matching] == ["MODIFIED", "DELETED"]


def test_watch_from_a_forgotten_resource_version_is_gone_and_bookmarks_flow(
    small_history_cluster: EmulatedCluster, namespace: str
) -> None:
    kube = small_history_cluster.client()
    url = f"{small_history_cluster.url}/api/v1/namespaces/{namespace}/configmaps"
    kube.create(_config_map("a", namespace))
    for value in range(10):
        kube.patch("ConfigMap", namespace, "a", {"data": {"a": str(value)}})

    (expired,) = _watch_lines(url, {"resourceVersion": "2"}, 1)
    current = httpx.get(url).json()["metadata"]["resourceVersion"]
    (bookmark,) = _watch_lines(url, {"resourceVersion": current, "allowWatchBookmarks": "true"}, 1)

    assert expired["type"] == "ERROR"
    assert expired["object"]["code"] == 410
    assert bookmark["type"] == "BOOKMARK"


def test_custom_resources_are_discovered_with_their_subresources(cluster: EmulatedCluster) -> None:
    listing = httpx.get(f"{cluster.url}/apis/modelplane.dev/v1alpha1").json()

    names = {resource["name"] for resource in listing["resources"]}

    assert {"modeldeployments", "modeldeployments/status", "modeldeployments/scale"} <= names
    assert {"externalmodels", "routingpolicies"} <= names


def test_scale_subresource_reads_and_writes_the_replica_count(
    kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(_model("m", namespace))

    scaled = kube.patch(
        "ModelDeployment", namespace, "m", {"spec": {"replicas": 4}}, subresource="scale"
    )
    stored = kube.get("ModelDeployment", namespace, "m")

    assert scaled["spec"]["replicas"] == 4
    assert stored is not None
    assert stored["spec"]["replicas"] == 4
