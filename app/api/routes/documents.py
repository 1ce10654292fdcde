from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from app.api.deps import Auth, ServicesDep
from app.api.routes import metrics

router = APIRouter(tags=["documents"], dependencies=[Auth])


@router.post("/collections/{name}/documents", status_code=201)
def upload(name: str, file: UploadFile, services: ServicesDep):
    """Upload one document. 201: stored; 409: the same file is already stored; 422: it could not be ingested (why)."""
    limit = int(services.settings.max_upload_mb * 2**20)
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"file over {services.settings.max_upload_mb:g} MB (MMRAG_MAX_UPLOAD_MB)")
    file_name = Path(file.filename or "upload").name  # never a path from the client
    with services.ingest_lock:
        result = services.ingestor.ingest_bytes(data, file_name, name)
    metrics.INGESTED.labels(result.status).inc()
    body = {"document_id": result.document_id, "file_name": file_name, "status": result.status,
            "units": result.units, "format": result.format, "reason": result.reason}
    if result.status == "failed":
        return JSONResponse(body, status_code=422)
    if result.status == "skipped":
        return JSONResponse({**body, "detail": "this file is already stored unchanged"}, status_code=409)
    return body


def _document(services, doc_id: int) -> dict:
    doc = services.store.docs.document(doc_id)
    if doc is None:
        raise HTTPException(404, f"no document {doc_id}")
    return doc


@router.get("/documents/{doc_id}")
def get_document(doc_id: int, services: ServicesDep) -> dict:
    return _document(services, doc_id)


@router.get("/documents/{doc_id}/units")
def get_units(doc_id: int, services: ServicesDep) -> dict:
    _document(services, doc_id)
    units = []
    for u in services.store.docs.document_units(doc_id):
        d = {k: v for k, v in u.__dict__.items() if k != "image_path"}  # server paths stay on the server
        d["image_url"] = f"/units/{u.id}/image" if u.image_path else None
        units.append(d)
    return {"document_id": doc_id, "units": units}


@router.delete("/documents/{doc_id}", status_code=204)
def delete_document(doc_id: int, services: ServicesDep) -> None:
    _document(services, doc_id)
    with services.ingest_lock:
        services.store.delete_document(doc_id)


@router.get("/units/{unit_id}/image")
def unit_image(unit_id: int, services: ServicesDep):
    unit = services.store.docs.units([unit_id]).get(unit_id)
    if unit is None or not unit.image_path:
        raise HTTPException(404, f"unit {unit_id} has no image")
    path = Path(unit.image_path)
    if not path.resolve().is_relative_to(services.store.blob_dir.resolve()) or not path.exists():
        raise HTTPException(404, "image file is gone")
    return FileResponse(path)
