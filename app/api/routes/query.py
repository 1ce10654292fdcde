"""POST /query: retrieval with citations, and an answer (streamed as server-sent events on request).

Retrieval and generation run in a worker thread while the request watches its connection: a client
that goes away stops the LLM call (its ``cancelled`` flag), instead of leaving a thread reading an
answer nobody will get.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import PrincipalDep, ServicesDep, allow
from app.api.routes import metrics
from app.generation.base import GenerationCancelled, GenerationError
from app.retrieval import Filters

router = APIRouter(tags=["query"])
UnitId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class QueryFilters(BaseModel):
    # an unknown field is refused, not ignored: a misspelt filter ("modality") would otherwise return unfiltered results
    model_config = ConfigDict(extra="forbid")

    types: list[Literal["text", "table", "image"]] | None = Field(None, description="only these unit types; [] matches nothing")
    document_ids: list[UnitId] | None = Field(None, max_length=100_000, description="only these documents; [] matches nothing")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as for the filters: "topk" or "filter" must not pass silently

    query: str = Field(..., min_length=1, max_length=4000)
    collection: str = Field("default", min_length=1, max_length=128)
    top_k: int = Field(5, ge=1, le=100)
    filters: QueryFilters | None = None
    generate: bool = True
    stream: bool = False
    rerank: bool = Field(True, description="rescore the top candidates with the cross-encoder (false: fused order, faster; "
                                           "the reader's abstention then uses its margin alone)")


@router.post("/query")
async def query(req: QueryRequest, request: Request, services: ServicesDep, principal: PrincipalDep,
                stream: bool = Query(False, description="stream the answer as SSE")):
    allow(principal, "read", req.collection)
    filters = Filters(req.filters.types, req.filters.document_ids) if req.filters else None
    pipeline = services.pipeline
    if services.store.collection_id(req.collection) is None:
        raise HTTPException(404, f"no collection named {req.collection!r}")
    if stream or req.stream:
        return StreamingResponse(_sse(pipeline, req, filters), media_type="text/event-stream")
    cancel = threading.Event()
    work = asyncio.ensure_future(anyio.to_thread.run_sync(
        lambda: pipeline.run(req.query, req.collection, req.top_k, filters, req.generate, cancelled=cancel.is_set,
                             rerank=req.rerank)))
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=0.25)
            if not work.done() and await request.is_disconnected():
                cancel.set()
                break
        result = await work
    except GenerationCancelled:
        return Response(status_code=499)
    except GenerationError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    finally:
        cancel.set()
    metrics.observe_stages(result.timings)
    return result.to_dict()


def _event(name: str, data) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(pipeline, req: QueryRequest, filters):
    """Events: ``citations`` (once), ``token`` (answer text deltas), ``done`` or ``error``.

    The LLM stream is read by a thread of its own that owns the generator from start to close, and
    hands deltas over a queue. When the client disconnects, this generator is closed; ``finally``
    flags the reader, which stops at the next bytes (or the read timeout) and closes its HTTP
    response itself: a generator left to the garbage collector would be closed in whatever thread
    runs next, while that thread holds the HTTP pool's lock (a deadlock seen in tests)."""
    cancel = threading.Event()
    try:
        _, sources, citations, timings = await anyio.to_thread.run_sync(pipeline.retrieve, req.query, req.collection, req.top_k,
                                                                        filters, req.rerank)
        yield _event("citations", {"citations": citations, "timings_ms": timings})
        done = {"backend": pipeline.generator.name}
        if req.generate and getattr(pipeline.generator, "whole", False):
            # the reader answers at once: one token, and the whole answer (kind, support, cell) when done
            try:
                answer = await anyio.to_thread.run_sync(pipeline.generator.generate, req.query, sources)
            except GenerationError as exc:
                yield _event("error", {"status": exc.status, "detail": str(exc)})
                return
            yield _event("token", {"text": answer.text})
            yield _event("done", {**done, "answer": answer.text, **{k: v for k, v in answer.to_dict().items() if k != "text"}})
            return
        if req.generate:
            deltas: queue.Queue = queue.Queue()
            streamed: list[str] = []
            threading.Thread(target=_pump, args=(pipeline.generator, req.query, sources, cancel, deltas),
                             name="mmrag-llm-stream", daemon=True).start()
            while True:
                try:
                    kind, value = deltas.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.02)
                    continue
                if kind == "token":
                    streamed.append(value)
                    yield _event("token", {"text": value})
                elif kind == "error":
                    yield _event("error", {"status": value.status, "detail": str(value)})
                    return
                else:
                    break
        checker = getattr(pipeline.generator, "checked", None)
        if req.generate and checker is not None:
            # the tokens went out as the model wrote them; the checked answer (citations moved or removed
            # where their source does not support the sentence) comes with the last event
            text, fixes = checker("".join(streamed).strip(), sources)
            done.update(answer=text, citation_fixes=[f.to_dict() for f in fixes])
        yield _event("done", done)
    finally:
        cancel.set()


def _pump(generator, question: str, sources, cancel: threading.Event, out: queue.Queue) -> None:
    stream = generator.stream(question, sources, cancelled=cancel.is_set)
    try:
        for delta in stream:
            if cancel.is_set():
                return
            out.put(("token", delta))
        out.put(("end", None))
    except GenerationCancelled:
        pass
    except GenerationError as exc:
        out.put(("error", exc))
    except Exception as exc:  # a bug must end the stream with an event, not hang it
        out.put(("error", GenerationError(f"{type(exc).__name__}: {exc}")))
    finally:
        stream.close()
