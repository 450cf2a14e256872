"""The request path, free of HTTP: authenticate, read the request, decide, call upstream.

The HTTP edge (`api/`) turns bytes into calls on `RouterService` and its domain errors
(`errors.py`) into OpenAI-style error responses. Everything here is built per app instance from
injected parts (catalog source, shared state, adapters); nothing is global.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from modelplane.router.adapters.upstream import (
    CompletedReply,
    StreamingReply,
    UpstreamAdapter,
    UpstreamUnavailable,
    Usage,
)
from modelplane.router.catalog import Catalog, CatalogBackend, CatalogSource, Tenant
from modelplane.router.config import AdapterKind, OverBudget
from modelplane.router.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    ContextLengthExceeded,
    InvalidRequest,
    LimitExceeded,
    NoEligibleBackend,
    PolicyViolation,
    SharedStateUnavailable,
    UnknownModel,
)
from modelplane.router.policy.engine import (
    CAPABILITY_CONTEXT_TOO_SMALL,
    CAPABILITY_OK,
    HEALTH_COOLDOWN,
    HEALTH_NO_READY_REPLICA,
    PINNED_OTHER_BACKEND,
    PRIVACY_OK,
    TENANT_NOT_ALLOWED,
    decide,
)
from modelplane.router.policy.features import extract_features
from modelplane.router.policy.types import (
    PRIVACY_EXTERNAL_BLOCKED,
    PRIVACY_TENANT_IN_CLUSTER_ONLY,
    BackendSnapshot,
    DataClass,
    Decision,
    RequestFeatures,
    TenantPolicy,
)
from modelplane.router.request_checks import (
    MAX_TOKENS_LIMIT,
    check_content_parts,
    check_response_format,
    check_tool_choice,
    check_tools,
)
from modelplane.router.state import (
    RATE_WINDOW_S,
    Admission,
    AttemptObservation,
    BackendHealth,
    RouterState,
    StateUnavailableError,
)

if TYPE_CHECKING:
    from modelplane.router.adapters.live import CatalogChanges
    from modelplane.router.adapters.telemetry import RequestTrace, Telemetry

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat-completion body that passed the checks the router relies on."""

    body: dict[str, Any]
    model: str
    stream: bool
    client_wants_usage: bool


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and check the fields the router reads; the rest is the upstream's business."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{index}] must be an object with a string 'role'")
        content = message.get("content")
        if isinstance(content, list):
            check_content_parts(f"messages[{index}].content", content)
        elif content is not None and not isinstance(content, str):
            raise InvalidRequest(f"messages[{index}].content must be a string or an array")
    model = body.get("model", AUTO_MODEL)
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_TOKENS_LIMIT
        ):
            raise InvalidRequest(f"'{name}' must be an integer from 0 to {MAX_TOKENS_LIMIT}")
    for name, kind, label in (
        ("tools", list, "an array"),
        ("response_format", dict, "an object"),
        ("stream_options", dict, "an object"),
    ):
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise InvalidRequest(f"'{name}' must be {label}")
    if tools := body.get("tools"):
        check_tools(tools)
    if (tool_choice := body.get("tool_choice")) is not None:
        check_tool_choice(tool_choice)
    if (response_format := body.get("response_format")) is not None:
        check_response_format(response_format)
    options = body.get("stream_options")
    client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(body=body, model=model, stream=stream, client_wants_usage=client_wants_usage)


_DATA_CLASS_ORDER = tuple(DataClass)


def parse_data_class(value: str | None) -> DataClass | None:
    """The declared class. A header sent more than once arrives comma-joined, as HTTP defines a
    repeated field; it counts as its most restrictive value, so no copy can lower another."""
    if value is None:
        return None
    try:
        declared = [DataClass(item.strip().lower()) for item in value.split(",")]
    except ValueError:
        choices = ", ".join(member.value for member in DataClass)
        raise InvalidRequest(f"x-modelplane-data-class must be one of {choices}") from None
    return max(declared, key=_DATA_CLASS_ORDER.index)


def effective_data_class(declared: DataClass | None, tenant_default: DataClass) -> DataClass:
    """The declared class, but never below the tenant's default: a tenant made confidential
    stays in the cluster whatever its clients send."""
    if declared is None:
        return tenant_default
    return max(declared, tenant_default, key=_DATA_CLASS_ORDER.index)


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    """A request with its decision, ready to be sent."""

    tenant: Tenant
    request: ChatRequest
    features: RequestFeatures
    decision: Decision
    catalog: Catalog
    trace: RequestTrace | None = None

    @property
    def decision_header(self) -> str:
        chosen = self.decision.chosen
        codes = (*self.decision.reasons, *(chosen.reasons if chosen else ()))
        return ",".join(dict.fromkeys(codes))


@dataclass(slots=True)
class ServedReply:
    """An upstream's answer and the bookkeeping owed once it has been delivered."""

    backend: CatalogBackend
    reply: CompletedReply | StreamingReply
    failed_before: tuple[str, ...]  # backends tried first that failed
    tenant: Tenant
    started: float
    slot: asyncio.Semaphore
    state: RouterState
    prompt_tokens: int  # the policy's count, charged when a stream never reports its usage
    trace: RequestTrace | None = None
    finished: bool = False

    @property
    def is_stream(self) -> bool:
        return not isinstance(self.reply, CompletedReply)

    def _usage_without_report(self) -> Usage:
        """What a reply is charged when the upstream reported no usage.

        A stream reports it in its last chunk, so one the client left, one that broke, or one
        from a server that ignores `include_usage` would otherwise cost nothing, and a tenant
        could stream past its budget by hanging up early. It is charged the prompt and a token
        per chunk passed on. An unstreamed reply without usage is an error (or a server that
        counts nothing) and is not charged.
        """
        reply = self.reply
        if isinstance(reply, CompletedReply):
            return Usage()
        return Usage(input_tokens=self.prompt_tokens, output_tokens=reply.chunks_relayed)

    async def finish(self, *, stream_broken: bool = False) -> None:
        """Release the backend slot and record usage and latency; call exactly once."""
        if self.finished:
            return
        self.finished = True
        self.slot.release()
        reply = self.reply
        if not isinstance(reply, CompletedReply):
            await reply.aclose()
        usage = reply.usage or self._usage_without_report()
        snapshot = self.backend.snapshot
        try:
            await self.state.observe(
                AttemptObservation(
                    backend=snapshot.name,
                    ok=not stream_broken,
                    ttft_ms=reply.ttft_ms,
                    streamed=not isinstance(reply, CompletedReply),
                    output_tokens=usage.output_tokens,
                    duration_s=time.perf_counter() - self.started,
                )
            )
            cost = (
                usage.input_tokens * snapshot.input_usd_per_mtok
                + usage.output_tokens * snapshot.output_usd_per_mtok
            ) / 1_000_000
            if self.trace is not None and stream_broken:
                self.trace.fail("stream_interrupted", 200, f"{snapshot.name} failed mid-stream")
            elif self.trace is not None:
                self.trace.finish(
                    snapshot.name,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=cost,
                    ttft_s=reply.ttft_ms / 1000.0,
                    status=reply.status if isinstance(reply, CompletedReply) else 200,
                )
            if usage.input_tokens or usage.output_tokens:
                await self.state.record_usage(
                    self.tenant.name,
                    snapshot.name,
                    usage.input_tokens,
                    usage.output_tokens,
                    cost,
                )
        except Exception:  # the answer is delivered; bookkeeping must not turn it into an error
            log.exception("recording usage for backend %s failed", snapshot.name)


class RouterService:
    """Everything a chat completion needs, built from injected parts."""

    def __init__(
        self,
        catalog_source: CatalogSource,
        state: RouterState,
        adapters: Mapping[AdapterKind, UpstreamAdapter],
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        *,
        telemetry: Telemetry | None = None,
        catalog_changes: CatalogChanges | None = None,
    ) -> None:
        self.catalog_source = catalog_source
        self.state = state
        self.adapters = adapters
        self.max_attempts = max_attempts
        self.telemetry = telemetry
        # Lets a request that only a not-yet-ready backend may serve wait for it (scale from 0).
        self.catalog_changes = catalog_changes
        self._slots: dict[str, tuple[int, asyncio.Semaphore]] = {}
        # The catalog and health mapping the overlay was built from. Held, not just their ids: a
        # freed catalog's id can be reused by the next one, which would serve stale snapshots.
        self._overlay_source: tuple[Catalog, Mapping[str, BackendHealth]] | None = None
        self._overlay: tuple[BackendSnapshot, ...] = ()

    def authenticate(self, authorization: str | None) -> tuple[Tenant, Catalog]:
        catalog = self.catalog_source.current
        token = bearer_token(authorization)
        if token is None:
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'")
        tenant = catalog.authenticate(token)
        if tenant is None:
            raise AuthenticationFailed("unknown API key")
        return tenant, catalog

    async def decide(
        self,
        tenant: Tenant,
        catalog: Catalog,
        request: ChatRequest,
        data_class: DataClass | None,
        *,
        enforce: bool = True,
        trace: RequestTrace | None = None,
    ) -> RoutedRequest:
        """The policy decision for `request`.

        With `enforce`, raises the domain error that stops the request (exhausted budget,
        policy violation, no eligible backend); without, only reports the decision (explain).
        """
        pinned = None if request.model == AUTO_MODEL else request.model
        allowed = tenant.policy.allowed_backends
        if pinned is not None and (
            pinned not in catalog.backends or (allowed is not None and pinned not in allowed)
        ):
            raise UnknownModel(f"unknown model {pinned!r}: use 'auto' or one of GET /v1/models")
        features = extract_features(
            request.body,
            effective_data_class(data_class, tenant.default_data_class),
            catalog.settings,
        )
        started = time.perf_counter()
        tenant_policy = tenant.policy
        if tenant.limits.has_budget:
            try:
                spend = await self.state.spend(tenant.name)
            except StateUnavailableError as error:
                raise SharedStateUnavailable(str(error)) from None
            if spend.exceeds(tenant.limits):
                if enforce and tenant.over_budget is OverBudget.REJECT:
                    raise BudgetExhausted(f"tenant {tenant.name!r} has used up its budget")
                tenant_policy = dataclasses.replace(tenant_policy, in_cluster_only=True)
        health = await self.state.backend_health()
        snapshots = _visible_to(tenant_policy, self._with_health(catalog, health))
        decision = decide(features, snapshots, tenant_policy, catalog.settings)
        decision_s = time.perf_counter() - started
        if enforce and decision.chosen is None and decision.policy_violation is None:
            catalog, decision = await self._wait_for_ready(
                features, tenant_policy, catalog, decision
            )
        if trace is not None and self.telemetry is not None:
            trace.decided(decision, self.telemetry.backends_of(catalog), decision_s)
        if enforce:
            violation = decision.policy_violation
            if violation is not None:
                raise PolicyViolation(violation)
            if decision.chosen is None:
                too_long = _context_length_exceeded_message(features, catalog, decision)
                if too_long is not None:
                    raise ContextLengthExceeded(too_long)
                raise NoEligibleBackend(
                    _no_eligible_message(decision), retry_after_s=_cooldown_left(decision, health)
                )
        return RoutedRequest(
            tenant=tenant,
            request=request,
            features=features,
            decision=decision,
            catalog=catalog,
            trace=trace,
        )

    async def _wait_for_ready(
        self,
        features: RequestFeatures,
        tenant_policy: TenantPolicy,
        catalog: Catalog,
        decision: Decision,
    ) -> tuple[Catalog, Decision]:
        """Wait, up to that backend's timeout, for a backend this request may use to be ready.

        Only backends the decision already allows but for readiness count (scaling from zero),
        so waiting never widens where the request may go: a confidential request keeps waiting
        for in-cluster capacity instead of spilling, then gets 503.
        """
        changes = self.catalog_changes
        wait_s = _ready_wait_s(catalog, decision)
        if changes is None or wait_s <= 0:
            return catalog, decision
        deadline = time.monotonic() + wait_s
        while decision.chosen is None:
            # The request may have been decided on a catalog already replaced (it was read when
            # the key was checked, before the body): waiting for the next one would sleep
            # through the very change that made a backend ready.
            if self.catalog_source.current is catalog:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await changes.wait(remaining):
                    break
            catalog = self.catalog_source.current
            snapshots = _visible_to(
                tenant_policy, self._with_health(catalog, await self.state.backend_health())
            )
            decision = decide(features, snapshots, tenant_policy, catalog.settings)
        return catalog, decision

    async def admit(self, routed: RoutedRequest) -> None:
        """Count the request against the tenant's per-minute limits."""
        limits = routed.tenant.limits
        if not limits.has_rate_limits:
            return
        tenant = routed.tenant.name
        tokens = routed.features.input_tokens + routed.features.max_output_tokens
        tpm = limits.tokens_per_minute
        if tpm is not None and tokens > tpm:
            raise LimitExceeded(
                f"this request asks for ~{tokens} tokens (input and max_tokens), more than "
                f"tenant {tenant!r}'s {tpm} tokens per minute: lower max_tokens or shorten it"
            )
        try:
            admission = await self.state.admit(tenant, limits, tokens)
        except StateUnavailableError as error:
            raise SharedStateUnavailable(str(error)) from None
        if admission is Admission.ADMITTED:
            return
        window_left_s = RATE_WINDOW_S - time.time() % RATE_WINDOW_S
        what = "requests" if admission is Admission.RPM_EXCEEDED else "tokens"
        raise LimitExceeded(
            f"tenant {tenant!r} exceeded its {what} per minute",
            retry_after_s=window_left_s,
        )

    async def send(self, routed: RoutedRequest) -> ServedReply:
        """Try the eligible backends in order until one answers; never any other backend."""
        request = routed.request
        decision = routed.decision
        failures: list[str] = []  # one line per skipped or failed backend, for the 503
        failed: list[str] = []  # their names, for the decision header
        waits: list[float] = []  # the waits failed upstreams asked for (Retry-After)
        for position in range(self.max_attempts):
            # A fallback's verdict is built only once it is needed: most requests need none.
            candidates = decision.first_eligible(position + 1)
            if position >= len(candidates):
                break
            backend = routed.catalog.backends[candidates[position].backend]
            slot = self._slot(backend)
            locked = slot.locked()
            if locked and position < len(decision.first_eligible(self.max_attempts)) - 1:
                failures.append(f"{backend.name}: at max_concurrency")  # a fallback remains
                failed.append(backend.name)
                continue
            if not await _acquire(slot, backend.upstream.timeout_s, locked):
                failures.append(f"{backend.name}: at max_concurrency")
                failed.append(backend.name)
                continue
            started = time.perf_counter()
            attempt = routed.trace.attempt(backend.name) if routed.trace is not None else None
            body = dict(request.body)
            body["model"] = backend.upstream.upstream_model
            adapter = self.adapters[backend.upstream.adapter]
            try:
                reply: CompletedReply | StreamingReply
                if request.stream:
                    if backend.upstream.adapter is AdapterKind.OPENAI:
                        body["stream_options"] = {
                            **(request.body.get("stream_options") or {}),
                            "include_usage": True,
                        }
                    reply = await adapter.stream(backend.upstream, body, request.client_wants_usage)
                else:
                    reply = await adapter.complete(backend.upstream, body)
            except orjson.JSONEncodeError as error:
                # orjson reads 1,024 levels of nesting but writes only 254: such a body was
                # accepted and cannot be forwarded, which is the client's doing, not a crash.
                slot.release()
                if attempt is not None:
                    attempt.failed("invalid_request", str(error))
                raise InvalidRequest(f"the request body cannot be forwarded: {error}") from None
            except UpstreamUnavailable as error:
                slot.release()
                if attempt is not None:
                    attempt.failed("upstream_unavailable", str(error))
                failures.append(f"{backend.name}: {error}")
                failed.append(backend.name)
                if error.retry_after_s is not None:
                    waits.append(error.retry_after_s)
                await self._observe_failure(backend, started, error.retry_after_s)
                continue
            except BaseException:
                slot.release()
                if attempt is not None:
                    attempt.failed("internal_error")
                raise
            if attempt is not None:
                attempt.succeeded(reply.ttft_ms / 1000.0)
            return ServedReply(
                backend=backend,
                reply=reply,
                failed_before=tuple(failed),
                tenant=routed.tenant,
                started=started,
                slot=slot,
                state=self.state,
                prompt_tokens=routed.features.input_tokens,
                trace=routed.trace,
            )
        # Retrying helps once the first of them is back: no sooner than any upstream asked for
        # when every failure came with a wait (each is now cooling down that long).
        raise NoEligibleBackend(
            "every eligible backend failed: " + "; ".join(failures),
            retry_after_s=min(waits) if waits and len(waits) == len(failed) else None,
        )

    async def _observe_failure(
        self, backend: CatalogBackend, started: float, retry_after_s: float | None
    ) -> None:
        try:
            await self.state.observe(
                AttemptObservation(
                    backend=backend.name,
                    ok=False,
                    duration_s=time.perf_counter() - started,
                    retry_after_s=retry_after_s,
                )
            )
        except Exception:
            log.exception("recording a failed attempt on %s failed", backend.name)

    def _slot(self, backend: CatalogBackend) -> asyncio.Semaphore:
        limit = backend.upstream.max_concurrency
        entry = self._slots.get(backend.name)
        if entry is None or entry[0] != limit:
            entry = (limit, asyncio.Semaphore(limit))
            self._slots[backend.name] = entry
        return entry[1]

    def _with_health(
        self, catalog: Catalog, health: Mapping[str, BackendHealth]
    ) -> tuple[BackendSnapshot, ...]:
        """The catalog's snapshots with live health laid over them (cached while unchanged)."""
        source = self._overlay_source
        if source is not None and source[0] is catalog and source[1] is health:
            return self._overlay
        snapshots = tuple(
            _overlay(backend.snapshot, health.get(name))
            for name, backend in catalog.backends.items()
        )
        self._overlay_source, self._overlay = (catalog, health), snapshots
        return snapshots


def _visible_to(
    tenant: TenantPolicy, snapshots: tuple[BackendSnapshot, ...]
) -> tuple[BackendSnapshot, ...]:
    """The backends a tenant may know of: a decision, its explanation and its errors name no
    other, so one tenant cannot learn another's backends from them."""
    allowed = tenant.allowed_backends
    if allowed is None:
        return snapshots
    return tuple(snapshot for snapshot in snapshots if snapshot.name in allowed)


_WAITABLE = frozenset({PRIVACY_OK, CAPABILITY_OK, HEALTH_NO_READY_REPLICA})
_COOLING_DOWN = frozenset({PRIVACY_OK, CAPABILITY_OK, HEALTH_COOLDOWN})


def _ready_wait_s(catalog: Catalog, decision: Decision) -> float:
    """How long to wait for a backend blocked only by having no ready replica (0: none is)."""
    return max(
        (
            catalog.backends[candidate.backend].upstream.timeout_s
            for candidate in decision.candidates
            if set(candidate.reasons) == _WAITABLE and candidate.backend in catalog.backends
        ),
        default=0.0,
    )


def _cooldown_left(decision: Decision, health: Mapping[str, BackendHealth]) -> float | None:
    """Seconds until the first backend kept out by its cooldown alone is back (e.g. the wait a
    rate-limited provider asked for); None when none is, or the wait is over already."""
    now = time.time()
    left = [
        health[candidate.backend].cooldown_until - now
        for candidate in decision.candidates
        if set(candidate.reasons) == _COOLING_DOWN and candidate.backend in health
    ]
    waits = [seconds for seconds in left if seconds > 0]
    return min(waits) if waits else None


def _overlay(snapshot: BackendSnapshot, health: BackendHealth | None) -> BackendSnapshot:
    if health is None or (
        health.in_cooldown == snapshot.in_cooldown
        and health.predicted_ttft_ms == snapshot.predicted_ttft_ms
    ):
        return snapshot
    # Spelled out: dataclasses.replace costs several times more on this per-request path.
    return BackendSnapshot(
        name=snapshot.name,
        location=snapshot.location,
        capabilities=snapshot.capabilities,
        context_window=snapshot.context_window,
        input_usd_per_mtok=snapshot.input_usd_per_mtok,
        output_usd_per_mtok=snapshot.output_usd_per_mtok,
        ready=snapshot.ready,
        in_cooldown=health.in_cooldown,
        predicted_ttft_ms=health.predicted_ttft_ms,
    )


async def _acquire(slot: asyncio.Semaphore, timeout_s: float, locked: bool) -> bool:
    """Take a slot, waiting up to `timeout_s` if it was `locked` (as just read from it)."""
    if not locked:
        await slot.acquire()
        return True
    try:
        await asyncio.wait_for(slot.acquire(), timeout_s)
    except TimeoutError:
        return False
    return True


# Backends a request may never use, whatever their context window: only the others count.
_NOT_THIS_REQUESTS_BACKEND = frozenset(
    {
        PINNED_OTHER_BACKEND,
        TENANT_NOT_ALLOWED,
        PRIVACY_EXTERNAL_BLOCKED,
        PRIVACY_TENANT_IN_CLUSTER_ONLY,
    }
)


def _context_length_exceeded_message(
    features: RequestFeatures, catalog: Catalog, decision: Decision
) -> str | None:
    """Why the request is too long for every backend it may use (pinned, allowed), or None."""
    windows = []
    for candidate in decision.candidates:
        if CAPABILITY_CONTEXT_TOO_SMALL in candidate.reasons:
            backend = catalog.backends.get(candidate.backend)
            windows.append(backend.snapshot.context_window if backend is not None else 0)
        elif _NOT_THIS_REQUESTS_BACKEND.isdisjoint(candidate.reasons):
            return None
    if not windows:
        return None
    needed = features.input_tokens + features.max_output_tokens
    return (
        f"the request needs {needed} tokens (about {features.input_tokens} of input and "
        f"{features.max_output_tokens} of max_tokens), more than the largest context window "
        f"of the backends it may use ({max(windows)})"
    )


def _no_eligible_message(decision: Decision) -> str:
    reasons = "; ".join(
        f"{candidate.backend}: {', '.join(candidate.reasons)}" for candidate in decision.candidates
    )
    return f"no backend may serve this request ({reasons})"


def explain(routed: RoutedRequest) -> dict[str, Any]:
    """The `/v1/route/explain` answer for a decided request."""
    decision = routed.decision
    chosen = decision.chosen
    return {
        "backend": chosen.backend if chosen else None,
        "data_class": decision.data_class.value,
        "pii": sorted(pii.value for pii in decision.pii_found),
        "reasons": list(decision.reasons),
        "candidates": [
            {
                "backend": candidate.backend,
                "eligible": candidate.eligible,
                "reasons": list(candidate.reasons),
                "estimated_cost_usd": candidate.estimated_cost_usd,
            }
            for candidate in decision.candidates
        ],
        "estimate": {
            "input_tokens": routed.features.input_tokens,
            "cost_usd": chosen.estimated_cost_usd if chosen else 0.0,
        },
    }


__all__: Sequence[str] = [
    "AUTO_MODEL",
    "ChatRequest",
    "RoutedRequest",
    "RouterService",
    "ServedReply",
    "bearer_token",
    "explain",
    "parse_chat_request",
    "parse_data_class",
]
