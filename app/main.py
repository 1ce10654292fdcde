"""The FastAPI application: thin routes over ``Services``."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from app.api import routes
from app.jobs import JobRunner
from app.services import Services
from indexes.store import WriterBusy
from mmrag import __version__
from mmrag.errors import ModelMismatch
from mmrag.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, warm: bool = True) -> FastAPI:
    settings = settings or Settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            import anyio

            await anyio.to_thread.run_sync(services.warm_up)
        app.state.ready = True
        yield

    app = FastAPI(title="mmrag", version=__version__, lifespan=lifespan,
                  description="Multimodal retrieval-augmented generation over your documents, with cited evidence.")
    app.state.services = services
    app.state.jobs = JobRunner(services)
    app.state.ready = False

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_mb * 2**20:
            return JSONResponse({"detail": f"request body over {settings.max_upload_mb:g} MB (MMRAG_MAX_UPLOAD_MB)"}, status_code=413)
        t0 = time.perf_counter()
        response = await call_next(request)
        routes.metrics.observe(request, response.status_code, time.perf_counter() - t0)
        return response

    for router in routes.ROUTERS:
        app.include_router(router)

    @app.exception_handler(WriterBusy)
    async def writer_busy(request: Request, exc: WriterBusy) -> JSONResponse:
        # another process (a CLI ingestion) holds the data directory's writer lock
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(ModelMismatch)
    async def model_mismatch(request: Request, exc: ModelMismatch) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return routes.metrics.render()

    return app
