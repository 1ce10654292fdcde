"""The FastAPI application: thin routes over ``Services``."""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from app.api import routes
from app.api.auth import KeyRing, bearer
from app.jobs import JobRunner
from app.services import Services
from indexes.base import WriterBusy
from mmrag import __version__
from mmrag.errors import ModelMismatch
from mmrag.settings import Settings

log = logging.getLogger(__name__)


class GatesAndMetrics:
    """/docs, /openapi.json and /metrics behind a key when keys are set; request counts and latency.
    Plain ASGI rather than ``@app.middleware``: that wrapper gets between a route and the client's
    disconnect, which uploads and queries watch to stop abandoned work."""

    def __init__(self, app, keys: KeyRing, open_docs: bool, open_metrics: bool) -> None:
        self.app, self.keys, self.open_docs, self.open_metrics = app, keys, open_docs, open_metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in ("/docs", "/openapi.json", "/metrics") and not (self.open_metrics if path == "/metrics" else self.open_docs):
            key = bearer(Headers(scope=scope))
            principal = self.keys.authenticate(key) if key else None
            if principal is None or (path == "/metrics" and not principal.admin):
                what = "an admin key" if path == "/metrics" else "a key"
                flag = "METRICS" if path == "/metrics" else "DOCS"
                response = JSONResponse({"detail": f"{path} needs {what} (or MMRAG_OPEN_{flag}=true)"}, status_code=401)
                return await response(scope, receive, send)
        status = [500]

        async def observed_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            routes.metrics.observe(scope, status[0], time.perf_counter() - t0)


def create_app(settings: Settings | None = None, warm: bool = True) -> FastAPI:
    settings = settings or Settings()
    keys = KeyRing.from_settings(settings)  # a malformed keys file stops the start, it never runs open
    services = Services(settings)
    open_docs = settings.open_docs if settings.open_docs is not None else not keys.enabled
    open_metrics = settings.open_metrics if settings.open_metrics is not None else not keys.enabled

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            import anyio

            await anyio.to_thread.run_sync(services.warm_up)
        app.state.ready = True
        yield
        services.close()

    # max_body_size: the body is counted as it arrives, so a chunked upload with no Content-Length is
    # refused at the limit instead of being spooled whole first (room for the multipart framing)
    app = FastAPI(title="mmrag", version=__version__, lifespan=lifespan, docs_url=None,
                  max_body_size=int(settings.max_upload_mb * 2**20) + 2**20,
                  description="Multimodal retrieval-augmented generation over your documents, with cited evidence.")
    app.state.services = services
    app.state.keys = keys
    app.state.jobs = JobRunner(services)
    app.state.ready = False

    app.add_middleware(GatesAndMetrics, keys=keys, open_docs=open_docs, open_metrics=open_metrics)

    for router in routes.ROUTERS:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mmrag")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # ASCII-escaped JSON: the echoed input may hold a lone surrogate, which UTF-8 cannot encode
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(WriterBusy)
    async def writer_busy(request: Request, exc: WriterBusy) -> JSONResponse:
        # another process (a CLI ingestion) holds the data directory's writer lock
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(ModelMismatch)
    async def model_mismatch(request: Request, exc: ModelMismatch) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        # disk full, a read-only data dir: say so, instead of a bare 500
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"the server could not write or read its data: {exc.strerror or exc}"}, status_code=507
                            if getattr(exc, "errno", None) == 28 else 500)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return routes.metrics.render()

    return app
