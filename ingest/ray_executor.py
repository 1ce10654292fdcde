"""Batch ingestion on a Ray cluster (``mmrag ingest PATHS --executor ray [--ray-address ADDR]``).

The driver (this process) finds the files, hashes them and skips the unchanged ones, exactly as the
local executor does; each remaining document is then parsed, embedded and committed by one of a pool
of Ray actors. An actor loads the models once and writes through the store interface, so every
document is still one commit with its status and failure reason. With ``MMRAG_STORE=postgres``,
workers on any node write to the shared database; with the local store, workers on this machine take
the data directory's writer lock per commit.

A worker that dies (killed, out of memory, its node lost) costs only its document in flight: it is
given to a fresh worker once more, then marked failed with the reason. Nothing half-written can be
seen, since a commit is one transaction. A document that runs past ``MMRAG_PARSE_TIMEOUT_S`` has its
worker stopped and fails with that reason. Rerunning the same command resumes: what was committed
unchanged is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass

from ingest.pipeline import FileResult, Ingestor, Item, Summary, _progress
from mmrag.settings import Settings

log = logging.getLogger(__name__)


class IngestWorker:
    """One Ray actor: an Ingestor with its own store connection and models, parsing inline."""

    def __init__(self, settings_json: str, threads: int) -> None:
        import torch

        from indexes.factory import open_store

        torch.set_num_threads(max(1, threads))
        settings = Settings.model_validate_json(settings_json).model_copy(update={"parse_workers": 0})
        self.ingestor = Ingestor(open_store(settings), settings)

    def pid(self) -> int:
        return os.getpid()

    def ingest(self, cid: int, item: Item, digest: str, size: int) -> FileResult:
        return self.ingestor.ingest_one(cid, item, digest, size)


@dataclass
class _Task:
    item: Item
    digest: str
    size: int
    attempts: int = 0
    started: float = 0.0


class RayExecutor:
    def __init__(self, settings: Settings, address: str | None = None, workers: int | None = None,
                 cpus_per_worker: float = 1.0, retries: int = 1) -> None:
        self.settings, self.address, self.workers = settings, address, workers
        self.cpus_per_worker, self.retries = cpus_per_worker, retries

    def _connect(self):
        import ray

        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {
                "num_cpus": max(1, int(round((self.workers or os.cpu_count() or 1) * self.cpus_per_worker))),
                "object_store_memory": 256 * 2**20, "include_dashboard": False}
            # the workers import mmrag from their own Python: install it on every node (README, "Scaling out")
            ray.init(ignore_reinit_error=True, log_to_driver=False, logging_level=logging.WARNING, **kwargs)
        return ray

    def run(self, ingestor: Ingestor, items: list[Item], collection: str, progress: bool = True,
            refused: list[FileResult] = ()) -> Summary:
        # Ray prints its cluster's notices (a worker died, ...) on stdout: keep stdout for our output (--json)
        import ray

        with contextlib.redirect_stdout(sys.stderr):
            started = not ray.is_initialized()
            try:
                return self._run(ingestor, items, collection, progress, refused)
            finally:
                if started:
                    ray.shutdown()

    def _run(self, ingestor: Ingestor, items: list[Item], collection: str, progress: bool,
             refused: list[FileResult]) -> Summary:
        t0 = time.perf_counter()
        ray = self._connect()
        summary = Summary(collection)
        cid = ingestor._collection(collection)  # created and its models bound before any worker writes
        bar = _progress(len(items) + len(refused), progress)

        def finish(result: FileResult) -> None:
            summary.add(result)
            bar.update(1)
            bar.set_postfix(ok=summary.ok, skipped=summary.skipped, failed=summary.failed, refresh=False)
            if result.status == "failed":
                log.warning("%s: %s", result.path, result.reason)

        for result in refused:
            finish(result)
        queue: list[_Task] = []
        for item in items:
            checked = ingestor._precheck(cid, item)
            if isinstance(checked, FileResult):
                finish(checked)
            else:
                queue.append(_Task(item, *checked))
        if queue:
            self._dispatch(ray, ingestor, cid, queue, finish)
        ingestor.store.flush(cid)
        bar.close()
        summary.seconds = time.perf_counter() - t0
        return summary

    def _dispatch(self, ray, ingestor: Ingestor, cid: int, queue: list[_Task], finish) -> None:
        n = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1) / self.cpus_per_worker))
        n = min(n, len(queue))
        threads = max(1, int(self.cpus_per_worker))
        Worker = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0)(IngestWorker)  # noqa: N806
        settings_json = self.settings.model_dump_json()
        idle = [Worker.remote(settings_json, threads) for _ in range(n)]
        log.info("ingesting %d documents on %d Ray workers (%s)", len(queue), n, self.address or "a local Ray")
        running: dict = {}  # object ref -> (worker, task)
        limit = self.settings.parse_timeout_s
        while queue or running:
            while queue and idle:
                worker, task = idle.pop(), queue.pop(0)
                task.attempts += 1
                task.started = time.monotonic()
                running[worker.ingest.remote(cid, task.item, task.digest, task.size)] = (worker, task)
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                worker, task = running.pop(ref)
                try:
                    finish(ray.get(ref))
                    idle.append(worker)
                except ray.exceptions.RayActorError as exc:  # the worker process died: this document only
                    idle.append(Worker.remote(settings_json, threads))
                    self._retry_or_fail(ingestor, cid, task, queue, finish,
                                        f"its ingestion worker died (killed, or out of memory){_why(exc)}")
                except ray.exceptions.RayTaskError as exc:  # a bug, not bad input (that fails inside): report it
                    idle.append(worker)
                    finish(self._fail(ingestor, cid, task, f"ingestion worker error: {exc.cause!r}"))
            now = time.monotonic()
            for ref, (worker, task) in list(running.items()):
                if now - task.started > limit:
                    running.pop(ref)
                    ray.kill(worker)
                    idle.append(Worker.remote(settings_json, threads))
                    finish(self._fail(ingestor, cid, task, f"stopped after {limit:g} s (MMRAG_PARSE_TIMEOUT_S)"))
        for worker in idle:
            ray.kill(worker)

    def _retry_or_fail(self, ingestor, cid, task: _Task, queue: list[_Task], finish, reason: str) -> None:
        if task.attempts <= self.retries:
            log.warning("%s: %s; trying again on another worker", task.item.source, reason)
            queue.append(task)
        else:
            finish(self._fail(ingestor, cid, task, f"{reason}, {task.attempts} times"))

    @staticmethod
    def _fail(ingestor: Ingestor, cid: int, task: _Task, reason: str) -> FileResult:
        doc_id = ingestor.store.record_failure(cid, task.item.source, task.item.name, task.digest, reason, task.size)
        return FileResult(task.item.source, "failed", reason, doc_id)


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f": {text[:160]}" if text else ""
