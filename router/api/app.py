"""The router's ASGI application, built by `create_app` from injected parts."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from modelplane.router.adapters.litellm_adapter import LiteLLMAdapter
from modelplane.router.adapters.metrics_listener import PROMETHEUS_CONTENT_TYPE
from modelplane.router.adapters.openai_http import OpenAIHttpAdapter
from modelplane.router.adapters.upstream import UpstreamAdapter
from modelplane.router.api.chat import (
    CHAT_COMPLETIONS_PATH,
    DEFAULT_MAX_BODY_BYTES,
    ChatCompletionsEndpoint,
    PayloadTooLarge,
    content_length,
    error_body,
    read_body,
)
from modelplane.router.api.openapi import METRICS_PATH, OPENAPI_PATH, openapi_document
from modelplane.router.api.shutdown import Readiness
from modelplane.router.catalog import CatalogSource
from modelplane.router.config import AdapterKind
from modelplane.router.errors import InvalidRequest, RouterError, UnknownModel
from modelplane.router.service import (
    AUTO_MODEL,
    DEFAULT_MAX_ATTEMPTS,
    RouterService,
    explain,
    parse_chat_request,
    parse_data_class,
)
from modelplane.router.state import RouterState
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from modelplane.router.adapters.live import CatalogChanges
    from modelplane.router.adapters.telemetry import Telemetry

log = logging.getLogger(__name__)


class BackgroundComponent(Protocol):
    """Something that runs beside the app (catalog watcher, metrics scraper)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error_response(error: RouterError) -> Response:
    response = Response(error_body(error), status_code=error.status, media_type="application/json")
    if isinstance(error, PayloadTooLarge):
        response.headers["connection"] = "close"  # its body goes unread: stop the client sending
    if (retry_after := error.retry_after_header) is not None:
        response.headers["retry-after"] = retry_after.decode()
    elif error.retrying_cannot_help:
        response.headers["x-should-retry"] = "false"
    return response


class RouteNotFound(RouterError, status=404, type="invalid_request_error", code="not_found"):
    """No route at that path."""


class MethodNotAllowed(
    RouterError, status=405, type="invalid_request_error", code="method_not_allowed"
):
    """The path exists, but not with that method."""


class RouterApp(FastAPI):
    """The FastAPI app, except that chat completions go straight to their raw ASGI endpoint.

    Measured here, FastAPI's middleware stack (error handling, body limit, built-in telemetry
    checks) costs a large share of a pass-through's CPU budget. Routes and middleware added to
    this app apply to every other path; the chat endpoint is instrumented inside the service.
    """

    chat_completions: ChatCompletionsEndpoint
    api_document: dict[str, Any]

    def openapi(self) -> dict[str, Any]:
        """The maintained document of `openapi.py`: FastAPI's own cannot see the chat path."""
        return self.api_document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == CHAT_COMPLETIONS_PATH
            and scope["method"] == "POST"
        ):
            await self.chat_completions(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def default_adapters() -> dict[AdapterKind, UpstreamAdapter]:
    return {AdapterKind.OPENAI: OpenAIHttpAdapter(), AdapterKind.LITELLM: LiteLLMAdapter()}


def create_app(
    catalog_source: CatalogSource,
    state: RouterState,
    *,
    adapters: Mapping[AdapterKind, UpstreamAdapter] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    telemetry: Telemetry | None = None,
    catalog_changes: CatalogChanges | None = None,
    components: Sequence[BackgroundComponent] = (),
    readiness: Readiness | None = None,
    metrics_on_api_port: bool = True,
) -> RouterApp:
    """The router app. It owns what it is given: adapters and state are closed on shutdown.

    `app.state.router` is the `RouterService`, for code that adds routes or background tasks
    (a catalog watcher replaces `catalog_source`'s catalog; the app sees it on the next request).
    `components` are started after and closed before everything else; with `telemetry`, the
    app serves its Prometheus metrics at `/metrics`, unless `metrics_on_api_port` is False (a
    `MetricsListener` component serves them on a port of their own). A request body over
    `max_body_bytes` is answered 413 without being read. Every error, unknown paths included, is
    an OpenAI error object; `/openapi.json` describes the API to holders of a key. Once
    `readiness` says the process is shutting down, `/readyz` answers 503 so the pod leaves its
    Service before it stops accepting.
    """
    chosen_adapters = dict(adapters) if adapters is not None else default_adapters()
    service = RouterService(
        catalog_source,
        state,
        chosen_adapters,
        max_attempts=max_attempts,
        telemetry=telemetry,
        catalog_changes=catalog_changes,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _warm_up_litellm_if_needed(catalog_source, chosen_adapters)
        started: list[BackgroundComponent] = []
        try:
            for component in components:
                await component.start()
                started.append(component)
            yield
        finally:
            for component in reversed(started):
                await component.aclose()
            for adapter in chosen_adapters.values():
                await adapter.aclose()
            await state.aclose()
            if telemetry is not None:
                await telemetry.aclose()

    app = RouterApp(
        title="modelplane router",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # FastAPI's would be unauthenticated and wrong: ours is below
    )
    app.state.router = service
    app.chat_completions = ChatCompletionsEndpoint(service, max_body_bytes)

    @app.exception_handler(RouterError)
    async def _router_error(_: Request, error: RouterError) -> Response:
        return _error_response(error)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> Response:
        # Starlette's own refusals, in the format every other error of the API has.
        where = f"{request.method} {request.url.path}"
        refusal: RouterError
        if error.status_code == 405:
            refusal = MethodNotAllowed(f"{where} is not allowed")
        elif error.status_code == 404:
            refusal = RouteNotFound(f"no route for {where}")
        else:
            refusal = InvalidRequest(str(error.detail))
        response = _error_response(refusal)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, error: Exception) -> Response:
        # Starlette logs the exception after this answer; the client gets the usual format.
        return _error_response(RouterError("internal error; see the router's log"))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        catalog = catalog_source.current
        shutting_down = readiness is not None and readiness.shutting_down
        ready = bool(catalog.backends) and bool(catalog.tenants_by_key_hash) and not shutting_down
        body = {
            "status": "ready" if ready else "shutting down" if shutting_down else "not ready",
            "catalog": catalog.revision,
            "backends": len(catalog.backends),
        }
        return OrjsonResponse(body, status_code=200 if ready else 503)

    serves_metrics = (
        metrics_on_api_port and telemetry is not None and telemetry.prometheus_registry is not None
    )
    if serves_metrics:
        assert telemetry is not None
        exported = telemetry

        @app.get(METRICS_PATH)
        async def metrics() -> Response:
            return Response(exported.export_prometheus(), media_type=PROMETHEUS_CONTENT_TYPE)

    app.api_document = openapi_document(serves_metrics=serves_metrics)

    @app.get(OPENAPI_PATH)
    async def openapi(request: Request) -> dict[str, Any]:
        service.authenticate(request.headers.get("authorization"))
        return app.openapi()

    def visible_models(request: Request) -> list[str]:
        """`auto` and the backends the caller's tenant may use."""
        tenant, catalog = service.authenticate(request.headers.get("authorization"))
        allowed = tenant.policy.allowed_backends
        return [AUTO_MODEL] + [
            name for name in catalog.backends if allowed is None or name in allowed
        ]

    def model_object(name: str, created: int) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": created, "owned_by": "modelplane"}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [model_object(name, created) for name in visible_models(request)],
        }

    @app.get("/v1/models/{model}")
    async def model(request: Request, model: str) -> dict[str, Any]:
        # Another tenant's backend is as unknown here as one that does not exist.
        if model not in visible_models(request):
            raise UnknownModel(f"the model {model!r} does not exist")
        return model_object(model, int(time.time()))

    @app.post("/v1/route/explain")
    async def route_explain(request: Request) -> dict[str, Any]:
        tenant, catalog = service.authenticate(request.headers.get("authorization"))
        length = content_length(request.headers.get("content-length"))
        chat = parse_chat_request(await read_body(request.receive, max_body_bytes, length))
        copies = request.headers.getlist("x-modelplane-data-class")
        declared = parse_data_class(",".join(copies) if copies else None)
        routed = await service.decide(tenant, catalog, chat, declared, enforce=False)
        return explain(routed)

    return app


async def _warm_up_litellm_if_needed(
    catalog_source: CatalogSource, adapters: Mapping[AdapterKind, UpstreamAdapter]
) -> None:
    """Pay LiteLLM's import and first-call cost now rather than on a client's first request."""
    models = [
        backend.upstream.litellm_model
        for backend in catalog_source.current.backends.values()
        if backend.upstream.adapter is AdapterKind.LITELLM
    ]
    adapter = adapters.get(AdapterKind.LITELLM)
    if models and isinstance(adapter, LiteLLMAdapter):
        started = time.perf_counter()
        try:
            await adapter.warm_up(models)
        except Exception:  # a failed warm-up only means the first real call is slow
            log.exception("warming LiteLLM up failed")
        else:
            log.info("LiteLLM warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
