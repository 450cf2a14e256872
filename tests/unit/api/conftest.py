"""Fixtures for the CRD and API model tests: the CRDs, the examples, and a CEL rule evaluator.

The CEL evaluator (modelplane.testing.crd_admission) applies the schema's defaults first and then
every `x-kubernetes-validations` rule at the node it is declared on, as the API server does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api.schema import load_crds, version_schema
from modelplane.testing.crd_admission import apply_defaults, cel_rule_failures

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "crds"
EXAMPLES_DIR = REPO / "examples"
MODELPLANE_KINDS = ("ModelDeployment", "ExternalModel", "RoutingPolicy")


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every YAML document under examples/ that is a Kubernetes object."""
    documents = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and "apiVersion" in document and "kind" in document:
                documents.append((path.name, document))
    return documents


def example_resources() -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name, doc in example_documents() if doc["kind"] in MODELPLANE_KINDS]


@pytest.fixture(scope="session")
def examples() -> list[dict[str, Any]]:
    return [document for _, document in example_documents()]


@pytest.fixture(scope="session")
def crds() -> dict[str, dict[str, Any]]:
    return load_crds(CRD_DIR)


CelCheck = Callable[[dict[str, Any]], list[str]]


@pytest.fixture(scope="session")
def cel_failures(crds: dict[str, dict[str, Any]]) -> CelCheck:
    """A function: resource -> the messages of every CEL rule it breaks (after defaulting)."""

    def check(resource: dict[str, Any]) -> list[str]:
        schema = version_schema(crds[resource["kind"]], resource["apiVersion"].split("/")[1])
        return cel_rule_failures(apply_defaults(copy.deepcopy(resource), schema), schema)

    return check


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrize over the example files at collection time, one test case per document.
    if "example_resource" in metafunc.fixturenames:
        resources = example_resources()
        metafunc.parametrize(
            "example_resource",
            [document for _, document in resources],
            ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in resources],
        )
    if "example_builtin_object" in metafunc.fixturenames:
        documents = [
            (name, doc) for name, doc in example_documents() if doc["kind"] not in MODELPLANE_KINDS
        ]
        metafunc.parametrize(
            "example_builtin_object",
            [document for _, document in documents],
            ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in documents],
        )
