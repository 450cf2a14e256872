"""Everything a request sends to a provider is scanned for PII, and no copy of the data-class
header can lower another: the gaps the end-to-end privacy property found
(tests/component/reliability/test_privacy_invariant.py), pinned down one by one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from modelplane.router.errors import InvalidRequest
from modelplane.router.policy.features import extract_features
from modelplane.router.policy.types import DataClass, PiiType, PolicySettings
from modelplane.router.service import parse_data_class

PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)
HELLO = {"role": "user", "content": "Please help with the quarterly plan."}


def pii_in(body: dict[str, Any]) -> frozenset[PiiType]:
    return extract_features(body, DataClass.PUBLIC, PolicySettings()).pii_found


def with_tool_turn(arguments: str, result: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return {
        "messages": [
            HELLO,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": result},
        ]
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("confidential, public", DataClass.CONFIDENTIAL),
        ("public,confidential", DataClass.CONFIDENTIAL),
        ("public, Internal", DataClass.INTERNAL),
        (" public ", DataClass.PUBLIC),
        (None, None),
    ],
)
def test_a_repeated_data_class_header_counts_as_its_most_restrictive_copy(
    value: str | None, expected: DataClass | None
) -> None:
    assert parse_data_class(value) is expected


@pytest.mark.parametrize("value", ["public, secret", "confidential,", ""])
def test_any_unknown_copy_of_the_data_class_header_is_rejected(value: str) -> None:
    with pytest.raises(InvalidRequest, match="x-modelplane-data-class"):
        parse_data_class(value)


def test_a_private_key_inside_json_tool_call_arguments_is_found() -> None:
    arguments = orjson.dumps({"path": "/etc/key.pem", "content": PEM_KEY}).decode()
    assert "\\n" in arguments  # the key's line breaks are JSON escapes here

    assert pii_in(with_tool_turn(arguments, "ok")) == {PiiType.CREDENTIAL}


def test_an_ssn_under_its_json_key_in_a_tool_result_is_found() -> None:
    result = orjson.dumps({"name": "Jane", "ssn": "536221234"}).decode()

    assert pii_in(with_tool_turn("{}", result)) == {PiiType.US_SSN}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prediction", {"type": "content", "content": "Dear jane.doe@example.com,"}),
        (
            "tools",
            [{"type": "function", "function": {"name": "f", "description": "jane@example.com"}}],
        ),
        (
            "functions",
            [{"name": "f", "description": "mail jane.doe@example.com", "parameters": {}}],
        ),
        (
            "response_format",
            {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"description": "jane@example.com"}},
            },
        ),
        ("user", "jane.doe@example.com"),
        ("metadata", {"customer": "jane.doe@example.com"}),
    ],
)
def test_pii_outside_the_messages_is_found(field: str, value: Any) -> None:
    assert pii_in({"messages": [HELLO], field: value}) == {PiiType.EMAIL}


@pytest.mark.parametrize(
    "assistant",
    [
        {"role": "assistant", "content": None, "refusal": "I won't mail jane.doe@example.com"},
        {
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I won't mail jane.doe@example.com"}],
        },
    ],
)
def test_pii_in_an_assistant_refusal_is_found(assistant: dict[str, Any]) -> None:
    assert pii_in({"messages": [HELLO, assistant]}) == {PiiType.EMAIL}


@pytest.mark.parametrize(
    "content",
    [
        "{not json at all: 4111}",
        "[" * 5000 + "]" * 5000,  # deeper than the JSON parser reads
        "{" + '"a":{' * 300 + "}" * 301,
        '{"ticket": 4111, "flag": true, "none": null, "ratio": 0.5}',
    ],
)
def test_json_looking_text_without_pii_finds_nothing_and_never_fails(content: str) -> None:
    assert pii_in({"messages": [{"role": "user", "content": content}]}) == frozenset()


def test_prose_and_token_estimate_are_unchanged_by_the_json_scan() -> None:
    body = {"messages": [{"role": "user", "content": "a" * 400}]}
    features = extract_features(body, DataClass.PUBLIC, PolicySettings())

    assert features.pii_found == frozenset()
    assert features.input_tokens == 100 + 4 + 3


FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("+44 20 7946 0958", PiiType.PHONE),
        ("4111 1111 1111 1111", PiiType.PAYMENT_CARD),
        ("jane.doe@example.com", PiiType.EMAIL),
        ("DE89 3704 0044 0532 0130 00", PiiType.IBAN),
        ("536-22-1234", PiiType.US_SSN),
        ("192.168.1.20", PiiType.IP_ADDRESS),
    ],
)
def test_pii_typed_full_width_is_found(value: str, kind: PiiType) -> None:
    typed = value.translate(FULL_WIDTH)  # as a CJK input method in full-width mode types it
    assert typed != value

    assert pii_in({"messages": [{"role": "user", "content": f"連絡先 {typed} です"}]}) == {kind}


@pytest.mark.parametrize("zero", [0x0660, 0x06F0, 0x0966, 0x09E6])  # Arabic-Indic ... Bengali
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("+44 20 7946 0958", PiiType.PHONE),
        ("4111 1111 1111 1111", PiiType.PAYMENT_CARD),
        ("536-22-1234", PiiType.US_SSN),
    ],
)
def test_pii_written_with_the_digits_of_another_script_is_found(
    value: str, kind: PiiType, zero: int
) -> None:
    native = value.translate({ord(str(digit)): zero + digit for digit in range(10)})
    assert native != value

    assert pii_in({"messages": [{"role": "user", "content": f"رقم {native} شكرا"}]}) == {kind}


@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d"])
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("536-22-1234", PiiType.US_SSN),
        ("4111 1111 1111 1111", PiiType.PAYMENT_CARD),
        ("jane.doe@example.com", PiiType.EMAIL),
        ("+44 20 7946 0958", PiiType.PHONE),
    ],
)
def test_pii_with_invisible_characters_inside_is_found(
    value: str, kind: PiiType, invisible: str
) -> None:
    hidden = invisible.join(value)  # renders, and reads to the model, as the value itself

    assert pii_in({"messages": [{"role": "user", "content": f"details: {hidden} thanks"}]}) == {
        kind
    }


def test_the_invisible_character_class_is_every_format_character_of_unicode() -> None:
    import unicodedata

    from modelplane.router.policy.features import _INVISIBLE_FORMAT

    format_characters = "".join(
        chr(code) for code in range(0x80, 0x110000) if unicodedata.category(chr(code)) == "Cf"
    )
    matched = "".join(_INVISIBLE_FORMAT.findall("".join(map(chr, range(0x80, 0x110000)))))
    assert matched == format_characters


def test_pii_split_over_the_text_parts_of_one_message_is_found() -> None:
    parts = [{"type": "text", "text": "my SSN is 536-22-"}, {"type": "text", "text": "1234 ok"}]

    assert pii_in({"messages": [{"role": "user", "content": parts}]}) == {PiiType.US_SSN}


def test_text_parts_are_counted_once_towards_input_tokens() -> None:
    parts = [{"type": "text", "text": "a" * 200}, {"type": "text", "text": "b" * 200}]
    body = {"messages": [{"role": "user", "content": parts}]}

    assert extract_features(body, DataClass.PUBLIC, PolicySettings()).input_tokens == 100 + 4 + 3
