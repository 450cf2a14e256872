"""Shape checks for the parts of a chat-completion body the router reads or vouches for.

`parse_chat_request` calls these for content-part arrays, tools, `tool_choice` and
`response_format`. They reject what no OpenAI-compatible upstream would accept anyway (a part that
is not an object, an image that is neither an http(s) URL nor a base64 data URL, a tool without a
name), so a client learns what is wrong from the router, in OpenAI's error format, before anything
is sent or paid for. Part and tool types the router does not know pass unchecked: upstreams such
as vLLM accept more of them than OpenAI does.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from modelplane.router.errors import InvalidRequest

IMAGE_DETAILS = frozenset({"auto", "low", "high"})
# Far above any context window; it keeps max_tokens a machine integer everywhere it is used.
MAX_TOKENS_LIMIT = 2**31 - 1
TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})
TOOL_TYPES = frozenset({"function", "custom"})


def check_content_parts(where: str, parts: list[Any]) -> None:
    """A message's content array: objects with a string `type`; text and image parts well formed."""
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{at} must be an object with a string 'type'")
        kind = part["type"]
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{at}.text must be a string")
        elif kind == "image_url":
            _check_image(f"{at}.image_url", part.get("image_url"))


def _check_image(where: str, image: Any) -> None:
    if not isinstance(image, Mapping) or not isinstance(image.get("url"), str):
        raise InvalidRequest(f"{where} must be an object with a string 'url'")
    detail = image.get("detail", "auto")
    if not isinstance(detail, str) or detail not in IMAGE_DETAILS:
        raise InvalidRequest(f"{where}.detail must be one of auto, low, high")
    url: str = image["url"]
    scheme = url[:8].lower()
    if scheme.startswith(("https://", "http://")):
        return
    if not scheme.startswith("data:"):
        # file:, ftp: and the like would have an upstream read from places the client names.
        raise InvalidRequest(f"{where}.url must be an http(s) URL or a base64 data URL")
    header, comma, payload = url.partition(",")
    if not comma or not header[5:].lower().startswith("image/") or not header.endswith(";base64"):
        raise InvalidRequest(f"{where}.url must be a data URL like data:image/png;base64,...")
    try:
        valid = bool(payload) and bool(binascii.a2b_base64(payload, strict_mode=True))
    except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
        valid = False
    if not valid:
        raise InvalidRequest(f"{where}.url holds no valid base64 image data")


def check_tools(tools: list[Any]) -> None:
    """`tools`: each a function (or custom) tool whose definition has a non-empty string name."""
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if not isinstance(kind, str) or kind not in TOOL_TYPES:
            raise InvalidRequest(f"{at} must be an object whose 'type' is 'function' or 'custom'")
        definition = tool.get(kind)
        if not isinstance(definition, Mapping):
            raise InvalidRequest(f"{at}.{kind} must be an object")
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{at}.{kind}.name must be a non-empty string")
        if not isinstance(definition.get("description", ""), str):
            raise InvalidRequest(f"{at}.{kind}.description must be a string")
        if kind == "function" and not isinstance(definition.get("parameters", {}), Mapping):
            raise InvalidRequest(f"{at}.function.parameters must be a JSON Schema object")


def check_tool_choice(choice: Any) -> None:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise InvalidRequest("'tool_choice' must be none, auto, required or an object")
    elif not isinstance(choice, Mapping) or not isinstance(choice.get("type"), str):
        raise InvalidRequest("'tool_choice' must be none, auto, required or an object with a type")


def check_response_format(response_format: Mapping[str, Any]) -> None:
    kind = response_format.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest("response_format.type must be a string")
    if kind == "json_schema" and not isinstance(response_format.get("json_schema"), Mapping):
        raise InvalidRequest("response_format.json_schema must be an object")


__all__ = [
    "IMAGE_DETAILS",
    "MAX_TOKENS_LIMIT",
    "TOOL_CHOICE_MODES",
    "TOOL_TYPES",
    "check_content_parts",
    "check_response_format",
    "check_tool_choice",
    "check_tools",
]
