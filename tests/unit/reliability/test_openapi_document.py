"""The router's OpenAPI document is valid OpenAPI 3.1, lists exactly the routes the app serves,
and its request schema agrees with the router's own checks on hand-picked bodies."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from modelplane.router.api.app import RouterApp, create_app
from modelplane.router.api.chat import CHAT_COMPLETIONS_PATH
from modelplane.router.api.openapi import openapi_document
from modelplane.router.catalog import CatalogSource, catalog_from_config
from modelplane.router.config import parse_config
from modelplane.router.errors import InvalidRequest
from modelplane.router.service import parse_chat_request
from modelplane.router.state import InProcessState
from openapi_spec_validator import validate
from starlette.routing import Route

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.telemetry import CapturedTelemetry

PNG = "data:image/png;base64,iVBORw0KGgo="


def build_app(*, with_telemetry: bool) -> RouterApp:
    config = parse_config(
        router_config_text(
            backends=[in_cluster_llama("http://127.0.0.1:9"), external_gpt4o("http://127.0.0.1:9")],
            tenants=[{"name": "team", "api_keys": ["key"]}],
        )
    )
    telemetry = CapturedTelemetry().telemetry if with_telemetry else None
    return create_app(
        CatalogSource(catalog_from_config(config)), InProcessState(), telemetry=telemetry
    )


def served_operations(app: RouterApp) -> set[tuple[str, str]]:
    served = {(CHAT_COMPLETIONS_PATH, "post")}  # the raw ASGI endpoint, outside the routing table
    for route in app.routes:
        assert isinstance(route, Route)
        served |= {(route.path, method.lower()) for method in route.methods or ()}
    return served


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("with_telemetry", [True, False])
def test_document_is_valid_openapi_and_lists_exactly_the_served_routes(
    with_telemetry: bool,
) -> None:
    app = build_app(with_telemetry=with_telemetry)
    document = app.openapi()
    validate(document)
    assert documented_operations(document) == served_operations(app)
    assert ("/metrics", "get") in documented_operations(document) if with_telemetry else True
    assert document == openapi_document(serves_metrics=with_telemetry)


def test_only_health_readiness_and_metrics_are_documented_without_a_key() -> None:
    document = openapi_document(serves_metrics=True)
    assert document["security"] == [{"bearerAuth": []}]
    public = {
        path
        for path, item in document["paths"].items()
        for operation in item.values()
        if operation.get("security") == []
    }
    assert public == {"/healthz", "/readyz", "/metrics"}


def test_every_error_response_is_the_openai_error_object() -> None:
    document = openapi_document(serves_metrics=True)
    error_statuses = [
        (path, status, response)
        for path, item in document["paths"].items()
        if path != "/readyz"  # its 503 is the readiness body probes read
        for operation in item.values()
        for status, response in operation["responses"].items()
        if status == "default" or int(status) >= 400
    ]
    assert error_statuses
    for _path, _status, response in error_statuses:
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def chat_request_validator() -> jsonschema.protocols.Validator:
    document = openapi_document(serves_metrics=False)
    schema = {"$ref": "#/components/schemas/ChatCompletionRequest", **document}
    return jsonschema.Draft202012Validator(schema)


def message(content: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}]}


BODIES: list[tuple[dict[str, Any], bool]] = [
    (message("hi"), True),
    (message(None), True),
    (
        message([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": PNG}}]),
        True,
    ),
    (message([{"type": "image_url", "image_url": {"url": "HTTPS://example.com/a.png"}}]), True),
    (message([{"type": "input_audio", "input_audio": {"data": "AAAA"}}]), True),
    ({**message("hi"), "tools": [{"type": "function", "function": {"name": "f"}}]}, True),
    (
        {**message("hi"), "tool_choice": "required", "response_format": {"type": "json_object"}},
        True,
    ),
    ({**message("hi"), "max_tokens": None, "stream": True, "temperature": 9}, True),
    ({"messages": []}, False),
    (message(5), False),
    (message([5]), False),
    (message([{"type": "text"}]), False),
    (message([{"type": "image_url", "image_url": "https://example.com/a.png"}]), False),
    (message([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]), False),
    (message([{"type": "image_url", "image_url": {"url": "data:image/png;base64,***"}}]), False),
    (message([{"type": "image_url", "image_url": {"url": "data:text/html;base64,AAAA"}}]), False),
    (message([{"type": "image_url", "image_url": {"url": PNG, "detail": "ultra"}}]), False),
    ({**message("hi"), "tools": [{"type": "function", "function": {"name": ""}}]}, False),
    ({**message("hi"), "tools": [{"type": "function", "function": {"parameters": 1}}]}, False),
    ({**message("hi"), "tools": [["function"]]}, False),
    ({**message("hi"), "tool_choice": "sometimes"}, False),
    ({**message("hi"), "response_format": {"type": "json_schema"}}, False),
    ({**message("hi"), "response_format": {}}, False),
    ({**message("hi"), "max_tokens": 2**31}, False),
    ({**message("hi"), "max_tokens": -1}, False),
    ({**message("hi"), "stream": None}, False),
    ({**message("hi"), "model": ""}, False),
]


@pytest.mark.parametrize(("body", "accepted"), BODIES)
def test_the_schema_and_the_router_agree_on_a_body(body: dict[str, Any], accepted: bool) -> None:
    assert chat_request_validator().is_valid(body) is accepted
    if accepted:
        parse_chat_request(orjson.dumps(body))
    else:
        with pytest.raises(InvalidRequest):
            parse_chat_request(orjson.dumps(body))
