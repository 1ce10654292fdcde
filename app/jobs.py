"""Ingestion jobs run by the service: one at a time, in a background thread, with per-file status.

Uploads and server-side folders both become jobs, so a request never parses or embeds: it stages
the files, queues a job and returns (an upload waits a bounded time for its own job, then answers
202). A job can be cancelled (DELETE /jobs/{id}, or the client abandons its upload): the document
being parsed has its worker killed, nothing of it is stored.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ingest.pipeline import FileResult, Item

log = logging.getLogger(__name__)
KEEP_FINISHED = 500  # finished jobs kept for GET /jobs


@dataclass
class Job:
    id: str
    collection: str
    owner: str
    items: list[Item] = field(default_factory=list)  # uploads: known up front
    paths: list[str] = field(default_factory=list)  # server-side files and folders: walked when run
    roots: list[Path] | None = None
    status: str = "queued"  # queued | running | done | failed | cancelled
    total: int | None = None
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    units: int = 0
    error: str | None = None
    files: dict[str, dict] = field(default_factory=dict)  # by source: name, status, reason, document_id, units
    results: list[FileResult] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cleanup: str | None = None  # a folder of staged uploads, removed when the job ends
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict:
        failures = [{"file_name": f["file_name"], "reason": f["reason"]} for f in self.files.values() if f["status"] == "failed"]
        return {"id": self.id, "collection": self.collection, "status": self.status, "total": self.total,
                "done": self.ok + self.skipped + self.failed, "ok": self.ok, "skipped": self.skipped, "failed": self.failed,
                "units": self.units, "error": self.error, "failures": failures, "files": list(self.files.values()),
                "created_at": self.created_at, "finished_at": self.finished_at}


class JobRunner:
    def __init__(self, services) -> None:
        self.services = services
        self.jobs: dict[str, Job] = {}
        self._queue: list[str] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self.staging = services.settings.data_dir / "uploads"
        self._clear_stale_staging()

    def _clear_stale_staging(self) -> None:
        # jobs live in memory: files staged by a process that died are not coming back to a job
        if self.staging.is_dir():
            for folder in self.staging.glob("job-*"):
                log.warning("removing staged uploads of an interrupted job: %s", folder.name)
                shutil.rmtree(folder, ignore_errors=True)

    def new_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def submit(self, job: Job) -> Job:
        job.total = len(job.items) if job.items else None
        for it in job.items:
            job.files[it.source] = {"file_name": it.name, "status": "queued", "reason": None, "document_id": None, "units": 0}
        with self._cv:
            self.jobs[job.id] = job
            self._queue.append(job.id)
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mmrag-jobs", daemon=True)
                self._thread.start()
            self._cv.notify()
        return job

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        with self._cv:
            if job.id in self._queue:  # not started: it ends here
                self._queue.remove(job.id)
                self._end(job, "cancelled")

    def _forget_old(self) -> None:
        done = [j for j in self.jobs.values() if j.finished.is_set()]
        for j in sorted(done, key=lambda j: j.created_at)[: max(0, len(done) - KEEP_FINISHED)]:
            self.jobs.pop(j.id, None)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                job = self.jobs[self._queue.pop(0)]
            self._run(job)

    def _entry(self, job: Job, source: str, name: str) -> dict:
        return job.files.setdefault(source, {"file_name": name, "status": "queued", "reason": None, "document_id": None, "units": 0})

    def _run(self, job: Job) -> None:
        job.status = "running"

        def on_result(result: FileResult, total: int) -> None:
            job.total = total
            job.results.append(result)
            setattr(job, result.status, getattr(job, result.status) + 1)
            job.units += result.units if result.status == "ok" else 0
            entry = self._entry(job, result.path, Path(result.path).name)
            entry.update(status=result.status, reason=result.reason, document_id=result.document_id, units=result.units)

        def on_stage(item: Item, stage: str) -> None:
            self._entry(job, item.source, item.name)["status"] = stage

        ingestor = self.services.ingestor
        try:
            if job.items:
                ingestor.ingest_items(job.items, job.collection, progress=False, on_result=on_result,
                                      cancelled=job.cancel.is_set, on_stage=on_stage)
            else:
                ingestor.ingest_paths(job.paths, job.collection, progress=False, on_result=on_result,
                                      roots=job.roots, cancelled=job.cancel.is_set)
            self._end(job, "cancelled" if job.cancel.is_set() else "done")
        except Exception as exc:  # the job fails; the service stays up
            log.exception("job %s failed", job.id)
            job.error = f"{type(exc).__name__}: {exc}"
            self._end(job, "failed")

    def _end(self, job: Job, status: str) -> None:
        job.status = status
        if status == "cancelled":
            for entry in job.files.values():
                if entry["status"] in ("queued", "parsing", "embedding"):
                    entry.update(status="failed", reason="cancelled")
        job.finished_at = time.time()
        if job.cleanup:
            shutil.rmtree(job.cleanup, ignore_errors=True)
        job.finished.set()
