"""What the router checks in a chat-completion request, and how its errors look on the wire."""

from __future__ import annotations

import orjson
import pytest
from modelplane.router.api.chat import error_body
from modelplane.router.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    InvalidRequest,
    LimitExceeded,
    NoEligibleBackend,
    PolicyViolation,
    RouterError,
    SharedStateUnavailable,
)
from modelplane.router.policy.types import DataClass
from modelplane.router.service import (
    bearer_token,
    effective_data_class,
    parse_chat_request,
    parse_data_class,
)

MESSAGES = [{"role": "user", "content": "hello"}]


def body(**fields: object) -> bytes:
    return orjson.dumps({"model": "auto", "messages": MESSAGES, **fields})


def test_a_well_formed_request_is_read_with_its_streaming_options() -> None:
    request = parse_chat_request(body(stream=True, stream_options={"include_usage": True}))
    assert (request.model, request.stream, request.client_wants_usage) == ("auto", True, True)
    assert request.body["messages"] == MESSAGES


def test_model_defaults_to_auto_and_image_parts_are_accepted() -> None:
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    raw = orjson.dumps({"messages": [{"role": "user", "content": parts}]})
    request = parse_chat_request(raw)
    assert request.model == "auto"
    assert not request.stream


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (orjson.dumps({"model": "auto"}), "'messages'"),
        (orjson.dumps({"messages": []}), "'messages'"),
        (orjson.dumps({"messages": ["hello"]}), r"messages\[0\]"),
        (orjson.dumps({"messages": [{"content": "x"}]}), r"messages\[0\]"),
        (orjson.dumps({"messages": [{"role": "user", "content": 7}]}), "content"),
        (body(model=42), "'model'"),
        (body(stream="yes"), "'stream'"),
        (body(max_tokens=-1), "'max_tokens'"),
        (body(max_tokens=True), "'max_tokens'"),
        (body(tools={"type": "function"}), "'tools'"),
        (body(response_format="json"), "'response_format'"),
    ],
)
def test_malformed_requests_are_invalid(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_chat_request(raw)


def test_bearer_token_is_read_only_from_a_bearer_authorization() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_data_class_header_is_case_insensitive_and_checked() -> None:
    assert parse_data_class(None) is None
    assert parse_data_class("Confidential") is DataClass.CONFIDENTIAL
    with pytest.raises(InvalidRequest, match="public, internal, confidential"):
        parse_data_class("secret")


@pytest.mark.parametrize(
    ("declared", "tenant_default", "effective"),
    [
        (None, DataClass.CONFIDENTIAL, DataClass.CONFIDENTIAL),
        (DataClass.PUBLIC, DataClass.CONFIDENTIAL, DataClass.CONFIDENTIAL),
        (DataClass.INTERNAL, DataClass.CONFIDENTIAL, DataClass.CONFIDENTIAL),
        (DataClass.PUBLIC, DataClass.INTERNAL, DataClass.INTERNAL),
        (DataClass.CONFIDENTIAL, DataClass.PUBLIC, DataClass.CONFIDENTIAL),
        (DataClass.INTERNAL, DataClass.PUBLIC, DataClass.INTERNAL),
        (None, DataClass.PUBLIC, DataClass.PUBLIC),
    ],
)
def test_a_declared_data_class_raises_the_tenant_default_but_never_lowers_it(
    declared: DataClass | None, tenant_default: DataClass, effective: DataClass
) -> None:
    assert effective_data_class(declared, tenant_default) is effective


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequest("bad"), 400, "invalid_request"),
        (AuthenticationFailed("who"), 401, "invalid_api_key"),
        (PolicyViolation("no"), 403, "policy_violation"),
        (LimitExceeded("slow down"), 429, "rate_limit_exceeded"),
        (NoEligibleBackend("none"), 503, "no_eligible_backend"),
    ],
)
def test_errors_map_to_openai_error_bodies(error: RouterError, status: int, code: str) -> None:
    assert error.status == status
    payload = orjson.loads(error_body(error))
    assert payload == {
        "error": {"message": error.message, "type": error.type, "param": None, "code": code}
    }


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (NoEligibleBackend("none"), b"1"),
        (SharedStateUnavailable("redis"), b"1"),
        (LimitExceeded("window", retry_after_s=12.2), b"13"),
        (LimitExceeded("window", retry_after_s=0.01), b"1"),
        (LimitExceeded("too large for any window"), None),
        (BudgetExhausted("month"), None),
        (InvalidRequest("bad"), None),
    ],
)
def test_errors_that_waiting_can_cure_say_how_long_in_whole_seconds(
    error: RouterError, retry_after: bytes | None
) -> None:
    assert error.retry_after_header == retry_after


@pytest.mark.parametrize(
    ("error", "cannot_help"),
    [
        (BudgetExhausted("month"), True),
        (LimitExceeded("too large for any window"), True),
        (LimitExceeded("window", retry_after_s=3), False),
        (NoEligibleBackend("none"), False),  # a backend may be back in a second
        (InvalidRequest("bad"), False),  # not retried by the SDKs anyway
    ],
)
def test_a_429_no_wait_can_cure_tells_the_sdks_not_to_retry(
    error: RouterError, cannot_help: bool
) -> None:
    assert error.retrying_cannot_help is cannot_help
