"""POST /query: retrieval with citations, and an answer (streamed as server-sent events on request)."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Auth, ServicesDep
from app.api.routes import metrics
from app.generation.base import GenerationError
from app.retrieval import Filters

router = APIRouter(tags=["query"], dependencies=[Auth])


class QueryFilters(BaseModel):
    # an unknown field is refused, not ignored: a misspelt filter ("modality") would otherwise return unfiltered results
    model_config = ConfigDict(extra="forbid")

    types: list[Literal["text", "table", "image"]] | None = Field(None, description="only these unit types")
    document_ids: list[int] | None = Field(None, description="only these documents")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as for the filters: "topk" or "filter" must not pass silently

    query: str = Field(..., min_length=1, max_length=4000)
    collection: str = "default"
    top_k: int = Field(5, ge=1, le=100)
    filters: QueryFilters | None = None
    generate: bool = True
    stream: bool = False


@router.post("/query")
def query(req: QueryRequest, services: ServicesDep, stream: bool = Query(False, description="stream the answer as SSE")):
    filters = Filters(req.filters.types, req.filters.document_ids) if req.filters else None
    pipeline = services.pipeline
    if services.store.docs.collection_id(req.collection) is None:
        raise HTTPException(404, f"no collection named {req.collection!r}")
    if stream or req.stream:
        return StreamingResponse(_sse(pipeline, req, filters), media_type="text/event-stream")
    try:
        result = pipeline.run(req.query, req.collection, req.top_k, filters, req.generate)
    except GenerationError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    metrics.observe_stages(result.timings)
    return result.to_dict()


def _event(name: str, data) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(pipeline, req: QueryRequest, filters):
    """Events: ``citations`` (once), ``token`` (answer text deltas), ``done`` or ``error``."""
    _, sources, citations, timings = pipeline.retrieve(req.query, req.collection, req.top_k, filters)
    yield _event("citations", {"citations": citations, "timings_ms": timings})
    if req.generate:
        try:
            for delta in pipeline.generator.stream(req.query, sources):
                yield _event("token", {"text": delta})
        except GenerationError as exc:
            yield _event("error", {"status": exc.status, "detail": str(exc)})
            return
    yield _event("done", {"backend": pipeline.generator.name})
