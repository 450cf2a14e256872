"""What the policy needs to know about a chat-completion request, read from its decoded JSON body.

Pure and forgiving: the API layer validates the body's shape; this module never rejects a request
and never raises on unexpected types, it simply ignores what it does not understand.

Input-token estimate (a fast heuristic, not a tokenizer; it only has to be good enough to tell
whether a request fits a context window and what it will roughly cost):

* text: UTF-8 bytes / 4, rounded up. BPE tokenizers of the GPT/LLaMA-3 families average about four
  characters per token for English prose and a little less for code; counting bytes instead of
  characters keeps non-Latin scripts (2-3 bytes per character, about one token each) from being
  badly underestimated.
* every message costs 4 tokens of chat-template framing, plus 3 for priming the reply.
* an image part costs 85 tokens with `detail: low` and 765 otherwise (a 1024x1024 image at high
  detail: 4 tiles x 170 + 85), since the image itself is not fetched.
* tool/function definitions and `response_format` schemas count as the text of their JSON.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from modelplane.router.policy.pii import detect_pii
from modelplane.router.policy.types import (
    DataClass,
    PiiType,
    PolicySettings,
    RequestFeatures,
    slot_setter,
)

AUTO_MODEL = "auto"

_TOKENS_PER_MESSAGE = 4
_TOKENS_FOR_REPLY_PRIMING = 3
_IMAGE_TOKENS_LOW_DETAIL = 85
_IMAGE_TOKENS_DEFAULT = 765
_BYTES_PER_TOKEN = 4
_JSON_MODES = frozenset({"json_object", "json_schema"})


def extract_features(
    body: Mapping[str, Any], declared: DataClass, settings: PolicySettings
) -> RequestFeatures:
    """The request features of one chat-completions body, declared data class, and settings."""
    messages = body.get("messages")
    texts: list[str] = []
    joined_parts: list[str] = []
    image_tokens = 0
    has_images = False
    message_count = 0
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            message_count += 1
            images = _collect_message(message, texts, joined_parts)
            if images:
                has_images = True
                image_tokens += images

    text_bytes = 0
    for text in texts:
        text_bytes += _utf8_length(text)
    definitions = _definition_bytes(body)
    input_tokens = (
        -(-(text_bytes + definitions) // _BYTES_PER_TOKEN)
        + message_count * _TOKENS_PER_MESSAGE
        + _TOKENS_FOR_REPLY_PRIMING
        + image_tokens
    )

    pii_found: frozenset[PiiType] = frozenset()
    if settings.pii_detection:
        scanned = [*_with_readable_json(texts), *joined_parts]
        if not body.keys().isdisjoint(_OTHER_TEXT_FIELDS):  # most bodies have none of them
            scanned.extend(_other_texts(body))
        if scanned:
            pii_found = detect_pii(_with_compatibility_form("\n\n".join(scanned)))

    features: RequestFeatures = _new_features(RequestFeatures)
    _set_data_class(features, declared)
    _set_pii_found(features, pii_found)
    _set_input_tokens(features, input_tokens)
    _set_max_output_tokens(features, _max_output_tokens(body))
    _set_has_images(features, has_images)
    _set_uses_tools(features, _uses_tools(body))
    _set_json_mode(features, _json_mode(body))
    _set_pinned_backend(features, _pinned_backend(body))
    return features


# Built slot by slot on the request path, as engine.py builds verdicts (see `slot_setter`).
_new_features = object.__new__
_set_data_class = slot_setter(RequestFeatures, "data_class")
_set_pii_found = slot_setter(RequestFeatures, "pii_found")
_set_input_tokens = slot_setter(RequestFeatures, "input_tokens")
_set_max_output_tokens = slot_setter(RequestFeatures, "max_output_tokens")
_set_has_images = slot_setter(RequestFeatures, "has_images")
_set_uses_tools = slot_setter(RequestFeatures, "uses_tools")
_set_json_mode = slot_setter(RequestFeatures, "json_mode")
_set_pinned_backend = slot_setter(RequestFeatures, "pinned_backend")


def _collect_message(message: Mapping[str, Any], texts: list[str], joined_parts: list[str]) -> int:
    """Append the message's scannable text to `texts`, and to `joined_parts` its text parts read
    as one (a value split over two parts reaches the model whole); return its images' tokens."""
    image_tokens = 0
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        first_part = len(texts)
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
            elif kind == "image_url":
                image_tokens += _image_tokens(part.get("image_url"))
            elif kind == "refusal":
                refusal = part.get("refusal")
                if isinstance(refusal, str):
                    texts.append(refusal)
        if len(texts) - first_part > 1:
            joined_parts.append("".join(texts[first_part:]))
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        texts.append(refusal)
    if "tool_calls" in message or "function_call" in message:  # spares most a generator
        texts.extend(_tool_call_arguments(message))
    return image_tokens


def _tool_call_arguments(message: Mapping[str, Any]) -> Iterator[str]:
    """The argument strings of the assistant's tool calls (and the legacy `function_call`)."""
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, Mapping):
                yield from _function_arguments(call.get("function"))
    yield from _function_arguments(message.get("function_call"))


def _function_arguments(function: Any) -> Iterator[str]:
    if isinstance(function, Mapping):
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            yield arguments


def _with_compatibility_form(text: str) -> str:
    """`text`, followed by a form the detectors read when that differs: NFKC (digits, letters and
    symbols typed full-width, as CJK input methods do, become ASCII) with the digits of other
    scripts (Arabic-Indic, Devanagari, ...) written as ASCII digits and without invisible format
    characters (a zero-width space or soft hyphen inside a number or address, pasted from a web
    page or put there to slip past a filter, is not read by the model either)."""
    if text.isascii():
        return text
    readable = (
        text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
    )
    readable = _OTHER_SCRIPT_DIGIT.sub(_ascii_digit, readable)
    readable = _INVISIBLE_FORMAT.sub("", readable)
    return text if readable == text else f"{text}\n\n{readable}"


_OTHER_SCRIPT_DIGIT = re.compile(r"[^\D0-9]")  # a decimal digit, but not an ASCII one
# Unicode's format characters (category Cf, Unicode 14: zero-width space and joiners, word
# joiner, soft hyphen, byte-order mark, bidirectional marks...), which render as nothing. Written
# out rather than computed (a pass over every code point costs 0.14 s at import); a unit test
# checks the class against this Python's Unicode database.
_INVISIBLE_FORMAT = re.compile(
    r"[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    r"\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    r"\U000e0020-\U000e007f]"
)


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.decimal(match.group()))


_JSON_FIRST_CHARS = frozenset("{[ \t\r\n")
# JSON's brackets, quotes and backslashes as spaces, so that a value no longer sits glued to its
# key; commas stay, so the numbers of an array ([2300,2400,...]) do not read as one long number.
_JSON_PUNCTUATION = bytes.maketrans(b'{}[]"\\', b"      ")


def _with_readable_json(texts: list[str]) -> list[str]:
    """The texts, plus a readable form of those that are JSON documents.

    Tool-call arguments and tool results are mostly JSON, where a private key's line breaks are
    `\\n` escapes and a value sits glued to its key (`"ssn":"536221234"`): the detectors, which
    read text as a person writes it, miss both in the raw JSON.
    """
    readable = [form for text in texts if (form := _readable_json(text)) is not None]
    return [*texts, *readable] if readable else texts


def _readable_json(text: str) -> str | None:
    """`text` with JSON's escaped line breaks undone and its punctuation as spaces, if it looks
    like a JSON document (string operations only: no parsing, no walk over its values)."""
    if text[:1] not in _JSON_FIRST_CHARS:  # most prompts: one slice, no copy of the text
        return None
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] not in "{[" or stripped[-1] not in "}]":
        return None
    unescaped = stripped.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
    # On the UTF-8 bytes: a byte table translates at C speed, and no multi-byte character holds
    # an ASCII byte.
    encoded = unescaped.encode("utf-8", "surrogatepass")
    return encoded.translate(_JSON_PUNCTUATION).decode("utf-8", "surrogatepass")


# Request fields besides the messages whose text the provider receives as well.
_OTHER_TEXT_FIELDS = ("tools", "functions", "response_format", "prediction", "user", "metadata")


def _other_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """The text of tool definitions, response schemas, predicted output, end-user id, metadata
    (as readable JSON)."""
    for key in _OTHER_TEXT_FIELDS:
        value = body.get(key)
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict | list) and value:
            try:
                dumped = orjson.dumps(value).decode()
            except orjson.JSONEncodeError:  # nested too deep to write: it cannot be sent either
                continue
            yield _readable_json(dumped) or dumped


def _image_tokens(image_url: Any) -> int:
    if isinstance(image_url, Mapping) and image_url.get("detail") == "low":
        return _IMAGE_TOKENS_LOW_DETAIL
    return _IMAGE_TOKENS_DEFAULT


def _utf8_length(text: str) -> int:
    # isascii() is O(1) on CPython, so the common case costs no encoding.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _definition_bytes(body: Mapping[str, Any]) -> int:
    total = 0
    for key in ("tools", "functions"):
        definitions = body.get(key)
        if isinstance(definitions, list) and definitions:
            total += _json_length(definitions)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and "json_schema" in response_format:
        total += _json_length(response_format["json_schema"])
    return total


def _json_length(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), default=str))
    except (TypeError, ValueError):  # circular or otherwise unserialisable: count nothing
        return 0


def _max_output_tokens(body: Mapping[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def _uses_tools(body: Mapping[str, Any]) -> bool:
    tools, functions = body.get("tools"), body.get("functions")
    return (isinstance(tools, list) and bool(tools)) or (
        isinstance(functions, list) and bool(functions)
    )


def _json_mode(body: Mapping[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") in _JSON_MODES


def _pinned_backend(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    if isinstance(model, str) and model and model != AUTO_MODEL:
        return model
    return None
