"""The FastAPI application: thin routes over ``Services``."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response

from app.api import routes
from app.api.auth import KeyRing, bearer
from app.jobs import JobRunner
from app.services import Services
from indexes.store import WriterBusy
from mmrag import __version__
from mmrag.errors import ModelMismatch
from mmrag.settings import Settings

log = logging.getLogger(__name__)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Stops reading a request body at the limit, whether or not it declares a Content-Length:
    a chunked upload is not spooled whole before it is refused."""

    def __init__(self, app, limit: int, label: str) -> None:
        self.app, self.limit, self.label = app, limit, label

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        body = f'{{"detail": "request body over {self.label} (MMRAG_MAX_UPLOAD_MB)"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


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

    app = FastAPI(title="mmrag", version=__version__, lifespan=lifespan, docs_url=None,
                  description="Multimodal retrieval-augmented generation over your documents, with cited evidence.")
    app.state.services = services
    app.state.keys = keys
    app.state.jobs = JobRunner(services)
    app.state.ready = False

    @app.middleware("http")
    async def gates_and_metrics(request: Request, call_next):
        path = request.url.path
        if path in ("/docs", "/openapi.json", "/metrics") and not (open_metrics if path == "/metrics" else open_docs):
            principal = keys.authenticate(bearer(request.headers)) if bearer(request.headers) else None
            if principal is None or (path == "/metrics" and not principal.admin):
                what = "an admin key" if path == "/metrics" else "a key"
                return JSONResponse({"detail": f"{path} needs {what} (or MMRAG_OPEN_{'METRICS' if path == '/metrics' else 'DOCS'}=true)"},
                                    status_code=401)
        t0 = time.perf_counter()
        response = await call_next(request)
        routes.metrics.observe(request, response.status_code, time.perf_counter() - t0)
        return response

    app.add_middleware(BodyLimit, limit=int(settings.max_upload_mb * 2**20) + 2**20, label=f"{settings.max_upload_mb:g} MB")

    for router in routes.ROUTERS:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mmrag")

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
