"""The router's OpenAPI 3.1 document, maintained here by hand.

The chat-completions path is a raw ASGI endpoint (see `chat.py`) and the other routes read their
bodies themselves, so FastAPI cannot derive their schemas. This document describes what the
router actually accepts, and no more: each request constraint below is one that
`parse_chat_request` and `request_checks` enforce (a body the schema rejects is answered with 4xx,
which the fuzzing tests hold it to), while fields the router does not read are passed to the
upstream unchanged and left unconstrained here. Served at `/openapi.json` to holders of a key.
"""

from __future__ import annotations

from typing import Any

from modelplane.router.api.chat import CHAT_COMPLETIONS_PATH
from modelplane.router.policy.types import DataClass
from modelplane.router.request_checks import IMAGE_DETAILS, MAX_TOKENS_LIMIT, TOOL_CHOICE_MODES

OPENAPI_PATH = "/openapi.json"
METRICS_PATH = "/metrics"
DATA_CLASS_HEADER = "x-modelplane-data-class"

_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"


def _any_case(word: str) -> str:
    """A regular expression matching `word` in any letter case (JSON Schema has no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# What `request_checks` accepts as an image URL: http(s), or a base64 data URL of an image.
IMAGE_URL_PATTERN = (
    f"^(?:{_any_case('http')}[sS]?://|{_any_case('data:image/')}[^,]*;base64,{_BASE64}$)"
)
DATA_CLASS_PATTERN = (
    "^[ \t]*(?:" + "|".join(_any_case(member.value) for member in DataClass) + ")[ \t]*$"
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _not(*values: str) -> dict[str, Any]:
    return {"type": "string", "not": {"enum": list(values)}}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "OpenAI's error object.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "examples": ["invalid_request_error"]},
                    "param": {"type": ["string", "null"]},
                    "code": {
                        "type": ["string", "integer", "null"],
                        "examples": ["invalid_api_key"],
                    },
                },
            }
        },
    },
    "TextPart": {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    },
    "ImagePart": {
        "type": "object",
        "required": ["type", "image_url"],
        "properties": {
            "type": {"const": "image_url"},
            "image_url": {
                "type": "object",
                "required": ["url"],
                "properties": {
                    "url": {"type": "string", "pattern": IMAGE_URL_PATTERN},
                    "detail": {"enum": sorted(IMAGE_DETAILS)},
                },
            },
        },
    },
    "OtherPart": {
        "type": "object",
        "description": "Any other part type (audio, file, refusal, vLLM's video_url, ...), "
        "passed to the upstream unchecked.",
        "required": ["type"],
        "properties": {"type": _not("text", "image_url")},
    },
    "Message": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "examples": ["system", "user", "assistant", "tool"]},
            "content": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "items": {
                            "anyOf": [_ref("TextPart"), _ref("ImagePart"), _ref("OtherPart")]
                        },
                    },
                    {"type": "null"},
                ]
            },
        },
    },
    "Tool": {
        "anyOf": [
            {
                "type": "object",
                "required": ["type", "function"],
                "properties": {
                    "type": {"const": "function"},
                    "function": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "description": {"type": "string"},
                            "parameters": {"type": "object"},
                        },
                    },
                },
            },
            {
                "type": "object",
                "required": ["type", "custom"],
                "properties": {
                    "type": {"const": "custom"},
                    "custom": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "description": {"type": "string"},
                        },
                    },
                },
            },
        ]
    },
    "ChatCompletionRequest": {
        "type": "object",
        "description": "OpenAI's chat-completion request. Fields not listed (temperature, "
        "top_p, stop, seed, ...) are passed to the upstream unchanged; none of them can change "
        "which upstream is called.",
        "required": ["messages"],
        "properties": {
            "model": {
                "type": "string",
                "minLength": 1,
                "default": "auto",
                "description": "'auto' lets the policy choose; a backend name pins the request "
                "(GET /v1/models lists both).",
            },
            "messages": {"type": "array", "minItems": 1, "items": _ref("Message")},
            "stream": {"type": "boolean", "default": False},
            "stream_options": {
                "type": ["object", "null"],
                "description": "include_usage: true adds the usage chunk.",
            },
            "max_tokens": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TOKENS_LIMIT},
            "max_completion_tokens": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_TOKENS_LIMIT,
            },
            "tools": {"type": ["array", "null"], "items": _ref("Tool")},
            "tool_choice": {
                "anyOf": [
                    {"enum": sorted(TOOL_CHOICE_MODES)},
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string"}},
                    },
                    {"type": "null"},
                ]
            },
            "response_format": {
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["type", "json_schema"],
                        "properties": {
                            "type": {"const": "json_schema"},
                            "json_schema": {"type": "object"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": _not("json_schema")},
                    },
                    {"type": "null"},
                ]
            },
        },
    },
    "ChatCompletion": {
        "type": "object",
        "description": "The upstream's answer, relayed unchanged.",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": {"type": "object"},
        },
    },
    "ChatCompletionEvent": {
        "type": "object",
        "description": "A server-sent event: a chat.completion.chunk as JSON, an error object "
        "if the upstream failed mid-stream, or [DONE] last.",
        "required": ["data"],
        "properties": {"data": {"type": "string"}},
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref("Model")},
        },
    },
    "RouteExplanation": {
        "type": "object",
        "required": ["backend", "data_class", "pii", "reasons", "candidates", "estimate"],
        "properties": {
            "backend": {"type": ["string", "null"]},
            "data_class": {"enum": [member.value for member in DataClass]},
            "pii": {"type": "array", "items": {"type": "string"}},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "candidates": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["backend", "eligible", "reasons", "estimated_cost_usd"],
                    "properties": {
                        "backend": {"type": "string"},
                        "eligible": {"type": "boolean"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                        "estimated_cost_usd": {"type": "number"},
                    },
                },
            },
            "estimate": {
                "type": "object",
                "required": ["input_tokens", "cost_usd"],
                "properties": {
                    "input_tokens": {"type": "integer"},
                    "cost_usd": {"type": "number"},
                },
            },
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "catalog", "backends"],
        "properties": {
            "status": {"type": "string"},
            "catalog": {"type": "string"},
            "backends": {"type": "integer"},
        },
    },
}

_DATA_CLASS_PARAMETER = {
    "name": DATA_CLASS_HEADER,
    "in": "header",
    "required": False,
    "description": "Declares the request's data class (any letter case). It can only be raised: "
    "PII found in the request makes it confidential whatever is declared.",
    "schema": {"type": "string", "pattern": DATA_CLASS_PATTERN, "examples": ["confidential"]},
}

_CHAT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}},
}

_ROUTED_HEADERS = {
    name: {"description": description, "required": True, "schema": {"type": "string"}}
    for name, description in (
        ("x-modelplane-backend", "the backend that answered"),
        (DATA_CLASS_HEADER, "the effective data class"),
        ("x-modelplane-decision", "the decision's reason codes"),
    )
}

_BODY_ERRORS = {
    "400": _error("malformed body or header, or longer than every usable context window"),
    "401": _error("missing or unknown API key"),
    "404": _error("the model is neither 'auto' nor a backend"),
    "413": _error("the body exceeds the router's limit (--max-body-bytes)"),
}


def _chat_operation() -> dict[str, Any]:
    return {
        "operationId": "createChatCompletion",
        "summary": "Route a chat completion by policy and relay the upstream's answer",
        "parameters": [_DATA_CLASS_PARAMETER],
        "requestBody": _CHAT_BODY,
        "responses": {
            "200": {
                "description": "the upstream's completion, or its SSE stream with stream: true",
                "headers": _ROUTED_HEADERS,
                "content": {
                    "application/json": {"schema": _ref("ChatCompletion")},
                    # Before OpenAPI 3.2, an event stream's schema describes each event.
                    "text/event-stream": {"schema": _ref("ChatCompletionEvent")},
                },
            },
            **_BODY_ERRORS,
            "403": _error("the pinned backend may not receive this request's data"),
            "429": _error("the tenant's rate limit or budget is used up"),
            "503": _error("no backend may serve the request now, or shared state is down"),
            "default": _error("an upstream's own error answer, relayed unchanged"),
        },
    }


def openapi_document(*, serves_metrics: bool) -> dict[str, Any]:
    """The document for an app that serves `/metrics` or not (it does with telemetry)."""
    public: list[dict[str, list[str]]] = []  # no key needed
    paths: dict[str, Any] = {
        CHAT_COMPLETIONS_PATH: {"post": _chat_operation()},
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "summary": "'auto' and the backends the caller's tenant may use",
                "responses": {
                    "200": _json(_ref("ModelList"), "the models"),
                    "401": _error("missing or unknown API key"),
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "operationId": "retrieveModel",
                "summary": "One of the models GET /v1/models lists",
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(_ref("Model"), "the model"),
                    "401": _error("missing or unknown API key"),
                    "404": _error("no such model, or not one the caller's tenant may use"),
                },
            }
        },
        "/v1/route/explain": {
            "post": {
                "operationId": "explainRoute",
                "summary": "The routing decision for a request, without sending it anywhere",
                "parameters": [_DATA_CLASS_PARAMETER],
                "requestBody": _CHAT_BODY,
                "responses": {
                    "200": _json(_ref("RouteExplanation"), "the decision, candidate by candidate"),
                    **_BODY_ERRORS,
                    "503": _error("budgets cannot be checked: shared state is down"),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness",
                "security": public,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                        "the process is alive",
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Readiness: a catalog with backends and tenants, not shutting down",
                "security": public,
                "responses": {
                    "200": _json(_ref("Readiness"), "ready"),
                    "503": _json(_ref("Readiness"), "not ready"),
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": _json({"type": "object"}, "the OpenAPI document"),
                    "401": _error("missing or unknown API key"),
                },
            }
        },
    }
    if serves_metrics:
        paths[METRICS_PATH] = {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "security": public,
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelplane router",
            "version": "1",
            "description": "OpenAI-compatible API that routes every request by policy. Errors "
            "use OpenAI's error object.",
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a tenant's API key",
                }
            },
        },
    }


__all__ = [
    "DATA_CLASS_PATTERN",
    "IMAGE_URL_PATTERN",
    "METRICS_PATH",
    "OPENAPI_PATH",
    "openapi_document",
]
