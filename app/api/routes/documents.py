from __future__ import annotations

import asyncio
import time
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from app.answer import region_urls
from app.api.deps import PrincipalDep, ServicesDep, allow
from app.api.routes import metrics
from app.api.routes.uploads import stage
from app.pages import NoPageImage
from indexes.records import DocumentRecord

router = APIRouter(tags=["documents"])
CollectionName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/\\]+$")]
DocId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/collections/{name}/documents", status_code=201,
             responses={202: {"description": "accepted: still ingesting, poll the job"}, 409: {}, 413: {}, 422: {}})
async def upload(name: CollectionName, request: Request, services: ServicesDep, principal: PrincipalDep,
                 file: UploadFile = File(...), replace: bool = Query(False, description="replace a stored document of the same name"),
                 wait: float | None = Query(None, ge=0, description="seconds to wait for the ingestion (default and "
                                                                     "maximum MMRAG_UPLOAD_WAIT_S); 0: answer 202 at once")):
    """Upload one document. It is ingested as a job; the request waits up to MMRAG_UPLOAD_WAIT_S for it:
    201 stored, 409 already stored (unchanged, or another document under this name without replace=true),
    422 it could not be ingested (why); past the wait, 202 with the job to poll (GET /jobs/{id})."""
    allow(principal, "write", name)
    runner = request.app.state.jobs
    job = await stage([file], name, replace, runner, services, principal.name)
    limit = services.settings.upload_wait_s
    deadline = time.monotonic() + (limit if wait is None else min(wait, limit))
    while not job.finished.is_set():
        if await request.is_disconnected():
            runner.cancel(job)  # nobody will read the answer: stop the work
            return Response(status_code=499)
        if time.monotonic() > deadline:
            return JSONResponse({"job": job.to_dict(), "detail": "still ingesting: poll the job"}, status_code=202,
                                headers={"Location": f"/jobs/{job.id}"})
        await asyncio.sleep(0.05)
    if not job.results:
        return JSONResponse({"job": job.to_dict(), "detail": job.error or job.status}, status_code=500 if job.error else 422)
    result = job.results[0]
    metrics.INGESTED.labels(result.status).inc()
    item = job.items[0]
    body = {"document_id": result.document_id, "file_name": item.name, "status": result.status, "units": result.units,
            "format": result.format, "reason": result.reason, "job_id": job.id}
    if result.conflict:
        return JSONResponse({**body, "detail": result.reason}, status_code=409)
    if result.status == "failed":
        return JSONResponse(body, status_code=422)
    if result.status == "skipped":
        return JSONResponse({**body, "detail": "this file is already stored unchanged"}, status_code=409)
    return JSONResponse(body, status_code=201)


def document_for(services, principal, doc_id: int, action: str = "read") -> DocumentRecord:
    """The document, if this key may ``action`` its collection; 404 otherwise (its existence is not told)."""
    doc = services.store.document(doc_id)
    collection = services.store.collection_name(doc.collection_id) if doc else None
    if doc is None or collection is None or not principal.can(action, collection):
        if doc is not None and collection is not None and principal.can("read", collection):
            allow(principal, action, collection)  # it may see the document: say what it lacks
        raise HTTPException(404, f"no document {doc_id}")
    return doc


@router.get("/documents/{doc_id}")
def get_document(doc_id: DocId, services: ServicesDep, principal: PrincipalDep) -> dict:
    return public(document_for(services, principal, doc_id))


def public(doc: DocumentRecord) -> dict:
    """A document row as clients see it: server paths stay on the server."""
    out = {k: v for k, v in doc.to_dict().items() if k != "original_path"}
    out["pages_viewable"] = bool(doc.original_path) or doc.format == "image"
    return out


@router.get("/documents/{doc_id}/units")
def get_units(doc_id: DocId, services: ServicesDep, principal: PrincipalDep) -> dict:
    doc = document_for(services, principal, doc_id)
    units = []
    for u in services.store.document_units(doc_id):
        d = {k: v for k, v in u.__dict__.items() if k != "image_path"}  # server paths stay on the server
        d["image_url"] = f"/units/{u.id}/image" if u.image_path else None
        d.update(region_urls(u, doc))
        units.append(d)
    return {"document_id": doc_id, "units": units}


@router.delete("/documents/{doc_id}", status_code=204)
def delete_document(doc_id: DocId, services: ServicesDep, principal: PrincipalDep) -> None:
    document_for(services, principal, doc_id, "write")
    try:
        with services.store.writer(wait_s=15):  # a running job holds it: WriterBusy (503, Retry-After)
            services.store.delete_document(doc_id)
    except KeyError:  # deleted meanwhile
        raise HTTPException(404, f"no document {doc_id}") from None


@router.get("/units/{unit_id}/image")
def unit_image(unit_id: DocId, services: ServicesDep, principal: PrincipalDep):
    unit = services.store.units([unit_id]).get(unit_id)
    if unit is None or not unit.image_path:
        raise HTTPException(404, f"unit {unit_id} has no image")
    document_for(services, principal, unit.document_id)
    path = FsPath(unit.image_path)
    if not path.resolve().is_relative_to(services.store.blob_dir.resolve()) or not path.exists():
        raise HTTPException(404, "image file is gone")
    return FileResponse(path)


_PNG_HEADERS = {"Cache-Control": "private, max-age=300"}


@router.get("/documents/{doc_id}/pages/{page}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such page, or not a PDF or image"}})
def page_image(doc_id: DocId, page: Annotated[int, Path(ge=1, le=100_000)], services: ServicesDep, principal: PrincipalDep,
               highlight: int | None = Query(None, ge=1, description="a unit id of this document: its box is drawn"),
               dpi: int | None = Query(None, ge=36, le=300, description="resolution (default MMRAG_PAGE_DPI)")):
    """The page rendered as PNG; with ``highlight``, the unit's region is boxed on it."""
    doc = document_for(services, principal, doc_id)
    box = None
    if highlight is not None:
        unit = services.store.units([highlight]).get(highlight)
        if unit is None or unit.document_id != doc_id:
            raise HTTPException(404, f"document {doc_id} has no unit {highlight}")
        if unit.page != page:
            raise HTTPException(404, f"unit {highlight} is on page {unit.page}, not page {page}")
        box = unit.bbox
    try:
        png = services.pages.page_png(doc, page, dpi, box)
    except NoPageImage as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(png, media_type="image/png", headers=_PNG_HEADERS)


@router.get("/units/{unit_id}/crop.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such unit, or no region to show"}})
def unit_crop(unit_id: DocId, services: ServicesDep, principal: PrincipalDep,
              dpi: int | None = Query(None, ge=36, le=300, description="resolution of a region cut from its page (default 150)")):
    """The unit's region of its page as PNG: a figure as it was cropped, a table or passage cut from the page."""
    unit = services.store.units([unit_id]).get(unit_id)
    if unit is None:
        raise HTTPException(404, f"no unit {unit_id}")
    doc = document_for(services, principal, unit.document_id)
    try:
        png = services.pages.crop_png(doc, unit, dpi)
    except NoPageImage as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(png, media_type="image/png", headers=_PNG_HEADERS)
