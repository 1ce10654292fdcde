"""Batch ingestion jobs: uploaded files, or server-side folders under MMRAG_INGEST_ROOTS."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import PrincipalDep, ServicesDep, allow
from app.api.routes.documents import CollectionName
from app.api.routes.uploads import stage
from app.jobs import Job

router = APIRouter(tags=["jobs"])


class PathJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(..., min_length=1, max_length=1000, description="files or folders on the server, under MMRAG_INGEST_ROOTS")


def _runner(request: Request):
    return request.app.state.jobs


@router.post("/collections/{name}/jobs", status_code=202)
def create_job(name: CollectionName, body: PathJob, request: Request, services: ServicesDep, principal: PrincipalDep) -> dict:
    """Ingest server-side files and folders in the background; poll GET /jobs/{id}. Every file found,
    links resolved, must lie under MMRAG_INGEST_ROOTS; one that does not fails unread."""
    allow(principal, "write", name)
    roots = [Path(r).resolve() for r in services.settings.ingest_roots.split(",") if r.strip()]
    if not roots:
        raise HTTPException(403, "server-side paths are disabled: set MMRAG_INGEST_ROOTS, or upload files to /collections/{name}/jobs/upload")
    resolved = []
    for p in body.paths:
        if "\x00" in p or len(p) > 4096:
            raise HTTPException(422, "a path holds a NUL character or is over 4096 characters")
        path = Path(p).resolve()
        if not any(path.is_relative_to(r) for r in roots):
            raise HTTPException(403, f"{p} is outside MMRAG_INGEST_ROOTS")
        if not path.exists():
            raise HTTPException(404, f"{p} does not exist")
        resolved.append(str(path))
    runner = _runner(request)
    return runner.submit(Job(runner.new_id(), name, principal.name, paths=resolved, roots=roots)).to_dict()


@router.post("/collections/{name}/jobs/upload", status_code=202)
async def upload_job(name: CollectionName, files: list[UploadFile], request: Request, services: ServicesDep,
                     principal: PrincipalDep, replace: bool = Query(False, description="replace stored documents of the same names")) -> dict:
    """Upload several files and ingest them as one background job."""
    allow(principal, "write", name)
    return (await stage(files, name, replace, _runner(request), services, principal.name)).to_dict()


def _job(request: Request, principal, job_id: str) -> Job:
    job = _runner(request).jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None or not principal.sees(job.collection):
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("/jobs")
def list_jobs(request: Request, principal: PrincipalDep) -> list[dict]:
    """The jobs of the collections this key may read or write."""
    return [j.to_dict() for j in list(_runner(request).jobs.values())
            if principal.sees(j.collection)]


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, principal: PrincipalDep) -> dict:
    return _job(request, principal, job_id).to_dict()


@router.delete("/jobs/{job_id}", status_code=202)
def cancel_job(job_id: str, request: Request, principal: PrincipalDep) -> dict:
    """Cancel a job: queued, it never runs; running, the document being parsed is stopped and nothing
    more is stored (documents already committed stay)."""
    job = _job(request, principal, job_id)
    allow(principal, "write", job.collection)
    _runner(request).cancel(job)
    return job.to_dict()
