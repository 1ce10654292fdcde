"""Batch ingestion jobs: uploaded files, or server-side folders under MMRAG_INGEST_ROOTS."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field

from app.api.deps import Auth, ServicesDep

router = APIRouter(tags=["jobs"], dependencies=[Auth])


class PathJob(BaseModel):
    paths: list[str] = Field(..., min_length=1, description="files or folders on the server, under MMRAG_INGEST_ROOTS")


def _runner(request: Request):
    return request.app.state.jobs


@router.post("/collections/{name}/jobs", status_code=202)
def create_job(name: str, body: PathJob, request: Request, services: ServicesDep) -> dict:
    """Ingest server-side files and folders in the background; poll GET /jobs/{id}."""
    roots = [Path(r).resolve() for r in services.settings.ingest_roots.split(",") if r.strip()]
    if not roots:
        raise HTTPException(403, "server-side paths are disabled: set MMRAG_INGEST_ROOTS, or upload files to /collections/{name}/jobs/upload")
    resolved = []
    for p in body.paths:
        path = Path(p).resolve()
        if not any(path.is_relative_to(r) for r in roots):
            raise HTTPException(403, f"{p} is outside MMRAG_INGEST_ROOTS")
        if not path.exists():
            raise HTTPException(404, f"{p} does not exist")
        resolved.append(str(path))
    return _runner(request).submit(name, resolved).to_dict()


@router.post("/collections/{name}/jobs/upload", status_code=202)
def upload_job(name: str, files: list[UploadFile], request: Request, services: ServicesDep) -> dict:
    """Upload several files and ingest them as one background job."""
    limit = int(services.settings.max_upload_mb * 2**20)
    uploads = services.store.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=uploads))
    for i, f in enumerate(files):
        data = f.file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"{f.filename}: over {services.settings.max_upload_mb:g} MB")
        (folder / f"{i:05d}-{Path(f.filename or 'upload').name}").write_bytes(data)
    return _runner(request).submit(name, [str(folder)], cleanup=str(folder)).to_dict()


@router.get("/jobs")
def list_jobs(request: Request) -> list[dict]:
    return [j.to_dict() for j in _runner(request).jobs.values()]


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict:
    job = _runner(request).jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job.to_dict()
