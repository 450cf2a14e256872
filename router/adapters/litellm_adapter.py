"""Calls through LiteLLM for providers that do not speak the OpenAI API (Anthropic, Gemini,
Azure, Bedrock, Triton's native API, ...).

`litellm` is imported on first use only: it takes about 3 s to import, and routers whose
backends are all OpenAI-compatible never need it. `warm_up` pays the import and LiteLLM's slow
first call at start-up instead of on a client's request.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
from modelplane.router.adapters.upstream import (
    CompletedReply,
    StreamBroken,
    UpstreamUnavailable,
    Usage,
    is_backend_failure,
    retry_after_from,
    usage_from,
)
from modelplane.router.catalog import Upstream

# The OpenAI chat-completion parameters passed on to `litellm.acompletion` (the request body
# fields of OpenAI's `CompletionCreateParams`, less `model`, `messages`, `stream` and
# `stream_options`, which the adapter sets itself). Everything else in a body is dropped:
# `acompletion` also takes connection settings as keyword arguments (`api_base`, `base_url`,
# `api_key`, `custom_llm_provider`, `extra_headers`, `aws_*`, `vertex_*`, ...), and a client
# must not be able to redirect the call, swap its credentials or add headers. Dropping rather
# than rejecting keeps a request's answer independent of which adapter the policy picked: the
# pass-through adapter forwards the same body (URL and headers fixed) to engines that accept
# vendor extras. (`metadata` is left out too: LiteLLM reads it itself, for its callbacks.)
FORWARDED_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # it otherwise prints provider hints to stdout
    # Counting a streamed LLaMA reply's tokens, LiteLLM would fetch a tokenizer from the Hugging
    # Face hub: a URL outside the catalog, fetched synchronously, so without egress it blocked
    # the router's event loop (every request) for ~24 s of retries. Its built-in one suffices.
    litellm.disable_hf_tokenizer_download = True
    # Providers that need images inline (Anthropic, Gemini, ...) make LiteLLM download a
    # client's image URL; its guard refuses private, loopback and link-local addresses.
    litellm.user_url_validation = True
    return litellm


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after_of(error: BaseException) -> float | None:
    """The wait a provider's 429 or 503 asked for, from the headers LiteLLM keeps on its error."""
    status = _status_of(error)
    headers = getattr(error, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(error, "response", None), "headers", None)
    if status is None or not isinstance(headers, Mapping):
        return None
    pairs = [
        (str(k).encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
        for k, v in headers.items()
    ]
    return retry_after_from(status, pairs)


def _is_retryable(error: BaseException) -> bool:
    # LiteLLM reports its own timeout (`litellm.Timeout`) as status 408, a backend failure.
    status = _status_of(error)
    return status is None or is_backend_failure(status)


# OpenAI's codes for what LiteLLM recognises in any provider's answer.
_OPENAI_CODES = {
    "ContextWindowExceededError": "context_length_exceeded",
    "ContentPolicyViolationError": "content_policy_violation",
    "NotFoundError": "model_not_found",
}
# "litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError:
# OpenAIException - <message>": LiteLLM's names for the error, then the provider's text.
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+: )+(?:\w+Error: )?(?:\w+Exception - )?")


def _providers_error(error: BaseException) -> Mapping[str, Any]:
    """The error object of the provider's own answer, where LiteLLM kept it (its `response`);
    empty when the answer was not OpenAI-style JSON or was never read."""
    try:
        payload = orjson.loads(error.response.content)  # type: ignore[attr-defined]
    except Exception:  # no response, an unread stream, not JSON: nothing to take
        return {}
    found = payload.get("error") if isinstance(payload, dict) else None
    return found if isinstance(found, dict) else {}


def _client_error_reply(error: BaseException, status: int) -> CompletedReply:
    """The provider's refusal in OpenAI's error format, as the pass-through would relay it.

    A client checking `error.code` or `error.param` must see the same answer whichever backend
    the policy picked: the provider's own error object where LiteLLM kept it, else what LiteLLM
    recognised in it (its exception class) in OpenAI's codes, without LiteLLM's prefixes.
    """
    provided = _providers_error(error)

    def field(name: str) -> str | None:
        for value in (provided.get(name), getattr(error, name, None)):
            if isinstance(value, str) and value:
                return value
        return None

    message = field("message") or str(getattr(error, "message", "") or error)
    body = orjson.dumps(
        {
            "error": {
                "message": _LITELLM_PREFIX.sub("", message),
                "type": field("type") or "invalid_request_error",
                "param": field("param"),
                "code": field("code") or _OPENAI_CODES.get(type(error).__name__),
            }
        }
    )
    return CompletedReply(status=status, body=body, usage=None, ttft_ms=0.0)


class LiteLLMAdapter:
    """`UpstreamAdapter` that translates through `litellm.acompletion`."""

    def __init__(self) -> None:
        self._module: Any = None

    def _module_loaded(self) -> Any:
        if self._module is None:
            self._module = _litellm()
        return self._module

    async def warm_up(self, models: Sequence[str]) -> None:
        """Import LiteLLM and run each model's provider code once with an offline mock call."""
        litellm = self._module_loaded()
        for model in dict.fromkeys(models):
            await litellm.acompletion(
                model=model,
                messages=[{"role": "user", "content": "warm up"}],
                mock_response="ok",
            )

    def _arguments(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        arguments = {key: value for key, value in body.items() if key in FORWARDED_PARAMETERS}
        arguments["model"] = upstream.litellm_model
        arguments["messages"] = body["messages"]
        arguments["timeout"] = upstream.timeout_s
        arguments["num_retries"] = 0  # the router moves to the next candidate itself
        if upstream.api_base:
            arguments["api_base"] = upstream.api_base
        if upstream.api_key:
            arguments["api_key"] = upstream.api_key
        return arguments

    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        litellm = self._module_loaded()
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**self._arguments(upstream, body))
        except Exception as error:  # LiteLLM wraps every provider error in its own types
            if _is_retryable(error):
                raise UpstreamUnavailable(
                    f"{type(error).__name__}: {error}", retry_after_s=_retry_after_of(error)
                ) from error
            return _client_error_reply(error, _status_of(error) or 400)
        ttft_ms = (time.perf_counter() - started) * 1000.0
        payload = response.model_dump(exclude_none=True)
        return CompletedReply(
            status=200, body=orjson.dumps(payload), usage=usage_from(payload), ttft_ms=ttft_ms
        )

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> _LiteLLMStream | CompletedReply:
        litellm = self._module_loaded()
        started = time.perf_counter()
        arguments = self._arguments(upstream, body)
        arguments["stream"] = True
        arguments["stream_options"] = {"include_usage": True}
        try:
            response = await litellm.acompletion(**arguments)
            stream = _LiteLLMStream(response, client_wants_usage)
            await stream.read_first_event()
        except StreamBroken as error:
            raise UpstreamUnavailable(str(error)) from error
        except Exception as error:
            if _is_retryable(error):
                raise UpstreamUnavailable(
                    f"{type(error).__name__}: {error}", retry_after_s=_retry_after_of(error)
                ) from error
            return _client_error_reply(error, _status_of(error) or 400)
        stream.ttft_ms = (time.perf_counter() - started) * 1000.0
        return stream

    async def aclose(self) -> None:
        return None


class _LiteLLMStream:
    def __init__(self, response: Any, client_wants_usage: bool) -> None:
        self._chunks: AsyncIterator[Any] = response.__aiter__()
        self._client_wants_usage = client_wants_usage
        self._first = b""
        self._usage: Usage | None = None
        self._chunks_relayed = 0
        self.ttft_ms = 0.0

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def chunks_relayed(self) -> int:
        return self._chunks_relayed

    async def read_first_event(self) -> None:
        while not self._first:
            event = await self._next_event()
            if event is None:
                raise StreamBroken("the stream ended before its first chunk")
            self._first = event

    async def events(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
            self._first = b""
        while (event := await self._next_event()) is not None:
            if event:
                yield event
        yield b"data: [DONE]\n\n"

    async def _next_event(self) -> bytes | None:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return None
        except Exception as error:
            raise StreamBroken(f"{type(error).__name__}: {error}") from error
        payload = chunk.model_dump(exclude_none=True)
        usage = usage_from(payload)
        if usage is not None:
            self._usage = usage
            if not payload.get("choices") and not self._client_wants_usage:
                return b""
        self._chunks_relayed += 1
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()
