"""Domain errors of the request path. The HTTP edge maps them to OpenAI-style error responses.

Each error names its HTTP status and OpenAI error `type` and `code` where it is declared:
`class UnknownModel(RouterError, status=404, type=..., code=...)`; a subclass that gives only some
of them keeps its parent's others.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class RouterError(Exception):
    """An error answered to the client; `status`, `type` and `code` follow OpenAI's error format."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"
    # Seconds after which trying again may succeed, sent as `Retry-After` (OpenAI's SDKs wait
    # that long before their own retries); None where waiting cannot help.
    retry_after_s: float | None = None

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        type: str | None = None,  # named as OpenAI's error field, like the attribute
        code: str | None = None,
        retry_after_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if type is not None:
            cls.type = type
        if code is not None:
            cls.code = code
        if retry_after_s is not None:
            cls.retry_after_s = retry_after_s

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s

    @property
    def retrying_cannot_help(self) -> bool:
        """A 429 with no wait that helps (a budget used up, one request over a per-minute
        limit): told to OpenAI's SDKs by `x-should-retry: false`, which they would otherwise
        retry at once, twice, for nothing."""
        return self.status == 429 and self.retry_after_s is None

    @property
    def retry_after_header(self) -> bytes | None:
        """The `Retry-After` value: whole seconds, at least 1."""
        if self.retry_after_s is None:
            return None
        return str(max(1, math.ceil(self.retry_after_s))).encode()


class InvalidRequest(RouterError, status=400, type="invalid_request_error", code="invalid_request"):
    """The request body or a modelplane header is malformed."""


class ContextLengthExceeded(InvalidRequest, code="context_length_exceeded"):
    """Input and `max_tokens` together exceed the context window of every backend the request
    may use: no backend will ever take it as it is (OpenAI answers it with the same code)."""


class AuthenticationFailed(
    RouterError, status=401, type="authentication_error", code="invalid_api_key"
):
    """The API key is missing or belongs to no tenant."""


class PolicyViolation(RouterError, status=403, type="permission_error", code="policy_violation"):
    """The request names a backend its data may not be sent to; nothing was sent anywhere."""


class UnknownModel(RouterError, status=404, type="invalid_request_error", code="model_not_found"):
    """The request names a model that is neither `auto` nor a backend."""


class LimitExceeded(RouterError, status=429, type="rate_limit_error", code="rate_limit_exceeded"):
    """The tenant has used up its requests or tokens per minute (retry when the window turns),
    or one request alone asks for more tokens than a minute allows (no retry will do)."""


class BudgetExhausted(LimitExceeded, code="budget_exceeded"):
    """The tenant has used up its daily or monthly budget."""


class NoEligibleBackend(
    RouterError, status=503, type="service_unavailable", code="no_eligible_backend", retry_after_s=1
):
    """No backend may serve the request, or every one that may has failed; one may be back soon
    (out of cooldown, scaled up)."""


class SharedStateUnavailable(
    RouterError, status=503, type="service_unavailable", code="state_unavailable", retry_after_s=1
):
    """Limits or budgets cannot be checked (shared state down) and are configured to fail closed."""
