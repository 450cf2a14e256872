"""Request features are read from an OpenAI chat-completions body, forgivingly."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.router.policy.features import extract_features
from modelplane.router.policy.types import DataClass, PiiType, PolicySettings, RequestFeatures

SETTINGS = PolicySettings()


def features_of(body: dict[str, Any], settings: PolicySettings = SETTINGS) -> RequestFeatures:
    return extract_features(body, DataClass.INTERNAL, settings)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_plain_text_request() -> None:
    features = features_of({"model": "auto", "messages": [user("a" * 400)]})

    assert features.data_class is DataClass.INTERNAL
    assert features.pinned_backend is None
    assert not features.has_images
    assert not features.uses_tools
    assert not features.json_mode
    # 400 ASCII bytes / 4 + 4 framing tokens for the message + 3 for priming the reply.
    assert features.input_tokens == 100 + 4 + 3
    assert features.pii_found == frozenset()


def test_non_ascii_text_is_estimated_from_its_utf8_bytes() -> None:
    features = features_of({"messages": [user("東" * 100)]})  # 3 bytes each
    assert features.input_tokens == 75 + 4 + 3


def test_image_parts_are_detected_and_counted() -> None:
    body = {
        "messages": [
            user(
                [
                    {"type": "text", "text": "what is in these images?"},
                    {"type": "image_url", "image_url": {"url": "https://x/1.png"}},
                    {"type": "image_url", "image_url": {"url": "https://x/2.png", "detail": "low"}},
                ]
            )
        ]
    }
    features = features_of(body)
    assert features.has_images
    text_tokens = -(-len("what is in these images?") // 4)
    assert features.input_tokens == text_tokens + 765 + 85 + 4 + 3


def test_tools_and_legacy_functions_are_detected() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    assert features_of({"messages": [user("hi")], "tools": [tool]}).uses_tools
    assert features_of({"messages": [user("hi")], "functions": [{"name": "lookup"}]}).uses_tools
    assert not features_of({"messages": [user("hi")], "tools": []}).uses_tools


def test_tool_definitions_count_towards_input_tokens() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "description": "x" * 400}}
    without = features_of({"messages": [user("hi")]}).input_tokens
    with_tool = features_of({"messages": [user("hi")], "tools": [tool]}).input_tokens
    assert with_tool - without > 100


@pytest.mark.parametrize(
    ("response_format", "json_mode"),
    [
        ({"type": "json_object"}, True),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}, True),
        ({"type": "text"}, False),
        ("json_object", False),
    ],
)
def test_json_mode(response_format: Any, json_mode: bool) -> None:
    body = {"messages": [user("hi")], "response_format": response_format}
    assert features_of(body).json_mode is json_mode


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = {"messages": [user("hi")], "max_tokens": 100, "max_completion_tokens": 300}
    assert features_of(body).max_output_tokens == 300
    assert features_of({"messages": [user("hi")], "max_tokens": 100}).max_output_tokens == 100


@pytest.mark.parametrize("value", [True, -5, 0, "100", 1.5, None])
def test_unusable_max_tokens_count_as_unset(value: Any) -> None:
    assert features_of({"messages": [user("hi")], "max_tokens": value}).max_output_tokens == 0


@pytest.mark.parametrize(
    ("model", "pinned"),
    [("auto", None), ("gpt-4o", "gpt-4o"), ("", None), (None, None), (42, None)],
)
def test_model_other_than_auto_pins_a_backend(model: Any, pinned: str | None) -> None:
    assert features_of({"model": model, "messages": [user("hi")]}).pinned_backend == pinned


def test_pii_is_found_in_plain_content_parts_and_tool_arguments() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "mail ops@example.com on failure"},
            user([{"type": "text", "text": "card 4111 1111 1111 1111"}]),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "ping", "arguments": '{"host": "192.168.1.20"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "SSN 536-22-1234"},
            {"role": "assistant", "function_call": {"name": "f", "arguments": "+44 20 7946 0958"}},
        ]
    }
    assert features_of(body).pii_found == {
        PiiType.EMAIL,
        PiiType.PAYMENT_CARD,
        PiiType.IP_ADDRESS,
        PiiType.US_SSN,
        PiiType.PHONE,
    }


def test_pii_is_not_looked_for_when_detection_is_off() -> None:
    body = {"messages": [user("mail ops@example.com")]}
    assert features_of(body, PolicySettings(pii_detection=False)).pii_found == frozenset()


def test_pii_split_across_messages_is_not_joined_into_a_false_hit() -> None:
    body = {"messages": [user("call 415"), user("555-2671 times")]}
    assert features_of(body).pii_found == frozenset()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "hello"},
        {"messages": [None, 3, "x", []]},
        {"messages": [{"content": 12}, {"content": [None, 5, {"type": "text", "text": 7}]}]},
        {"messages": [{"content": [{"type": "image_url", "image_url": "not-a-mapping"}]}]},
        {"messages": [{"tool_calls": "x"}, {"tool_calls": [None, {"function": "x"}]}]},
        {"messages": [user("hi")], "tools": "all", "functions": {"a": 1}},
        {"messages": [user("hi")], "response_format": {"type": "json_schema", "json_schema": {1}}},
    ],
)
def test_malformed_shapes_do_not_crash(body: dict[str, Any]) -> None:
    features = features_of(body)
    assert features.input_tokens >= 3
