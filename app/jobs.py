"""Batch ingestion jobs run by the service: one at a time, in a background thread, with progress."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    collection: str
    paths: list[str]
    status: str = "queued"  # queued | running | done | failed
    total: int | None = None
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    units: int = 0
    error: str | None = None
    failures: list[dict] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cleanup: str | None = None  # a folder of uploaded files to remove when done

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("cleanup")
        d["done"] = self.ok + self.skipped + self.failed
        return d


class JobRunner:
    def __init__(self, services) -> None:
        self.services = services
        self.jobs: dict[str, Job] = {}
        self._queue: list[str] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, collection: str, paths: list[str], cleanup: str | None = None) -> Job:
        job = Job(uuid.uuid4().hex[:12], collection, paths, cleanup=cleanup)
        with self._cv:
            self.jobs[job.id] = job
            self._queue.append(job.id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mmrag-jobs", daemon=True)
                self._thread.start()
            self._cv.notify()
        return job

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                job = self.jobs[self._queue.pop(0)]
            self._run(job)

    def _run(self, job: Job) -> None:
        job.status = "running"

        def progress(result, total) -> None:
            job.total = total
            setattr(job, result.status, getattr(job, result.status) + 1)
            job.units += result.units if result.status == "ok" else 0
            if result.status == "failed":
                job.failures.append({"path": Path(result.path).name, "reason": result.reason})

        try:
            with self.services.ingest_lock:
                self.services.ingestor.ingest_paths(job.paths, job.collection, progress=False, on_result=progress)
            job.status = "done"
        except Exception as exc:  # the job fails; the service stays up
            log.exception("job %s failed", job.id)
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = time.time()
            if job.cleanup:
                shutil.rmtree(job.cleanup, ignore_errors=True)
