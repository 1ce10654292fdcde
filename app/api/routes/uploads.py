"""Staging uploaded files for a job: bounded reads, safe names, never a path from the client."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import anyio
from fastapi import HTTPException, UploadFile

from app.jobs import Job, JobRunner
from ingest.parse import display_name
from ingest.pipeline import Item


async def stage(files: list[UploadFile], collection: str, replace: bool, runner: JobRunner, services, owner: str) -> Job:
    limit = int(services.settings.max_upload_mb * 2**20)
    runner.staging.mkdir(parents=True, exist_ok=True)
    job_id = runner.new_id()
    folder = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=runner.staging))
    items: list[Item] = []
    try:
        for i, f in enumerate(files):
            name = display_name(f.filename)
            data = await f.read(limit + 1)
            if len(data) > limit:
                raise HTTPException(413, f"{name}: over {services.settings.max_upload_mb:g} MB (MMRAG_MAX_UPLOAD_MB)")
            path = folder / f"{i:05d}"  # the client's name is kept as data, never used as a path
            await anyio.to_thread.run_sync(path.write_bytes, data)
            items.append(Item(path, f"upload:{name}", name, None, replace))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return runner.submit(Job(job_id, collection, owner, items=items, cleanup=str(folder)))
