"""The router's ASGI application, built by `create_app` from injected parts."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from modelplane.router.adapters.litellm_adapter import LiteLLMAdapter
from modelplane.router.adapters.openai_http import OpenAIHttpAdapter
from modelplane.router.adapters.upstream import UpstreamAdapter
from modelplane.router.api.chat import CHAT_COMPLETIONS_PATH, ChatCompletionsEndpoint, error_body
from modelplane.router.catalog import CatalogSource
from modelplane.router.config import AdapterKind
from modelplane.router.errors import RouterError
from modelplane.router.service import (
    AUTO_MODEL,
    DEFAULT_MAX_ATTEMPTS,
    RouterService,
    explain,
    parse_chat_request,
    parse_data_class,
)
from modelplane.router.state import RouterState
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error_response(error: RouterError) -> Response:
    return Response(error_body(error), status_code=error.status, media_type="application/json")


class RouterApp(FastAPI):
    """The FastAPI app, except that chat completions go straight to their raw ASGI endpoint.

    Measured here, FastAPI's middleware stack (error handling, body limit, built-in telemetry
    checks) costs a large share of a pass-through's CPU budget. Routes and middleware added to
    this app apply to every other path; the chat endpoint is instrumented inside the service.
    """

    chat_completions: ChatCompletionsEndpoint

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
) -> RouterApp:
    """The router app. It owns what it is given: adapters and state are closed on shutdown.

    `app.state.router` is the `RouterService`, for code that adds routes or background tasks
    (a catalog watcher replaces `catalog_source`'s catalog; the app sees it on the next request).
    """
    chosen_adapters = dict(adapters) if adapters is not None else default_adapters()
    service = RouterService(catalog_source, state, chosen_adapters, max_attempts=max_attempts)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _warm_up_litellm_if_needed(catalog_source, chosen_adapters)
        try:
            yield
        finally:
            for adapter in chosen_adapters.values():
                await adapter.aclose()
            await state.aclose()

    app = RouterApp(
        title="modelplane router",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.state.router = service
    app.chat_completions = ChatCompletionsEndpoint(service)

    @app.exception_handler(RouterError)
    async def _router_error(_: Request, error: RouterError) -> Response:
        return _error_response(error)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        catalog = catalog_source.current
        ready = bool(catalog.backends) and bool(catalog.tenants_by_key_hash)
        body = {
            "status": "ready" if ready else "not ready",
            "catalog": catalog.revision,
            "backends": len(catalog.backends),
        }
        return OrjsonResponse(body, status_code=200 if ready else 503)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        tenant, catalog = service.authenticate(request.headers.get("authorization"))
        allowed = tenant.policy.allowed_backends
        created = int(time.time())
        names = [AUTO_MODEL] + [
            name for name in catalog.backends if allowed is None or name in allowed
        ]
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "modelplane"}
                for name in names
            ],
        }

    @app.post("/v1/route/explain")
    async def route_explain(request: Request) -> dict[str, Any]:
        tenant, catalog = service.authenticate(request.headers.get("authorization"))
        chat = parse_chat_request(await request.body())
        declared = parse_data_class(request.headers.get("x-modelplane-data-class"))
        routed = await service.decide(tenant, catalog, chat, declared, enforce=False)
        return explain(routed)

    return app


async def _warm_up_litellm_if_needed(
    catalog_source: CatalogSource, adapters: Mapping[AdapterKind, UpstreamAdapter]
) -> None:
    """Pay LiteLLM's import and first-call cost now rather than on a client's first request."""
    uses_litellm = any(
        backend.upstream.adapter is AdapterKind.LITELLM
        for backend in catalog_source.current.backends.values()
    )
    adapter = adapters.get(AdapterKind.LITELLM)
    if uses_litellm and isinstance(adapter, LiteLLMAdapter):
        started = time.perf_counter()
        try:
            await adapter.warm_up()
        except Exception:  # a failed warm-up only means the first real call is slow
            log.exception("warming LiteLLM up failed")
        else:
            log.info("LiteLLM warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
