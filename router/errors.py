"""Domain errors of the request path. The HTTP edge maps them to OpenAI-style error responses."""

from __future__ import annotations


class RouterError(Exception):
    """An error answered to the client; `status`, `type` and `code` follow OpenAI's error format."""

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(RouterError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(RouterError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PolicyViolation(RouterError):
    """The request names a backend its data may not be sent to; nothing was sent anywhere."""

    status = 403
    type = "permission_error"
    code = "policy_violation"


class UnknownModel(RouterError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class LimitExceeded(RouterError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExhausted(LimitExceeded):
    code = "budget_exceeded"


class NoEligibleBackend(RouterError):
    """No backend may serve the request, or every one that may has failed."""

    status = 503
    type = "service_unavailable"
    code = "no_eligible_backend"


class SharedStateUnavailable(RouterError):
    """Limits or budgets cannot be checked (shared state down) and are configured to fail closed."""

    status = 503
    type = "service_unavailable"
    code = "state_unavailable"
