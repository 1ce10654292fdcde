"""Parse workers: child processes that parse one document at a time under a time and memory budget.

Why not a ``ProcessPoolExecutor``: a forked pool worker inherits the parent's open files (the data
directory's writer lock among them), outlives a ``kill -9`` of its parent as an orphan that keeps
the lock, and one task cannot be stopped without breaking the whole pool. Here each worker is a
fresh interpreter (``python -m ingest.worker``: exec'd, so it inherits no descriptors) that asks the
kernel to kill it when its parent dies, and the parent watches each task: past its time budget, past
its memory budget (resident set, polled), or when the job is cancelled, the worker is killed and the
document fails with that reason; the next document gets a new worker.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ingest.drafts import Draft
from mmrag.settings import Settings

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
POLL_S = 0.05
START_TIMEOUT_S = 120


class WorkerLost(RuntimeError):
    pass


def send(stream, obj) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _read_exact(stream, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise WorkerLost("worker closed its pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(stream):
    (n,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return pickle.loads(_read_exact(stream, n))


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class ParseWorker:
    """One child process, started on first use and again after it was killed."""

    def __init__(self, settings: Settings, blob_dir: str) -> None:
        self.settings, self.blob_dir = settings, blob_dir
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "MMRAG_WORKER_PARENT": str(os.getpid()), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "ingest.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True, start_new_session=False)
        send(proc.stdin, (self.settings, self.blob_dir))
        # the budget is for parsing, not for the interpreter's start: wait for the worker's imports
        ready, _, _ = select.select([proc.stdout.fileno()], [], [], START_TIMEOUT_S)
        if not ready or recv(proc.stdout) != "ready":
            proc.kill()
            raise WorkerLost(f"a parse worker did not start within {START_TIMEOUT_S} s")
        return proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None

    def parse(self, path: str, name: str, assets, cancelled: Callable[[], bool] | None = None,
              on_draft: Callable[[Draft], None] | None = None):
        """(parsed, error, seconds). Never raises for a bad document, a killed worker or a budget.
        ``on_draft`` gets the drafts (ingest.drafts) the worker sends while it parses."""
        t0 = time.perf_counter()
        timeout = self.settings.parse_timeout_s
        memory = self.settings.parse_memory_mb * 2**20
        try:
            if not self.alive():
                self.kill()
                self.proc = self._start()
            send(self.proc.stdin, (path, name, assets, on_draft is not None))
            t0 = time.perf_counter()
            fd = self.proc.stdout.fileno()
            while True:
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if ready:
                    msg = recv(self.proc.stdout)
                    if not isinstance(msg, Draft):
                        return msg
                    on_draft(msg)
                    continue
                elapsed = time.perf_counter() - t0
                if self.proc.poll() is not None:
                    raise WorkerLost(_exit_reason(self.proc.returncode))
                if elapsed > timeout:
                    self.kill()
                    return None, f"parsing took longer than {timeout:g} s (MMRAG_PARSE_TIMEOUT_S): stopped", elapsed
                used = rss_bytes(self.proc.pid)
                if used > memory:
                    self.kill()
                    return None, (f"parsing needed more than {self.settings.parse_memory_mb:g} MB of memory "
                                  f"(MMRAG_PARSE_MEMORY_MB): stopped"), elapsed
                if cancelled is not None and cancelled():
                    self.kill()
                    return None, "cancelled", elapsed
        except (WorkerLost, BrokenPipeError, EOFError, pickle.UnpicklingError, OSError, AttributeError) as exc:  # AttributeError: closed meanwhile
            self.kill()
            return None, f"the parser crashed on this file ({exc})", time.perf_counter() - t0


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with status {code}"


class ParsePool:
    """``n`` workers behind futures; a document waits for a free worker."""

    def __init__(self, n: int, settings: Settings, blob_dir: str | Path) -> None:
        self.n = max(1, n)
        self._idle: queue.SimpleQueue[ParseWorker] = queue.SimpleQueue()
        self._workers = [ParseWorker(settings, str(blob_dir)) for _ in range(self.n)]
        for w in self._workers:
            self._idle.put(w)
        self._threads = ThreadPoolExecutor(self.n, thread_name_prefix="mmrag-parse")
        self._closed = threading.Event()

    def submit(self, path: str, name: str, assets, cancelled: Callable[[], bool] | None = None,
               on_draft: Callable[[Draft], None] | None = None) -> Future:
        return self._threads.submit(self._run, path, name, assets, cancelled, on_draft)

    def _run(self, path, name, assets, cancelled, on_draft):
        worker = self._idle.get()
        try:
            if self._closed.is_set():
                return None, "cancelled", 0.0
            return worker.parse(path, name, assets, cancelled, on_draft)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        self._closed.set()
        self._threads.shutdown(wait=False, cancel_futures=True)
        for w in self._workers:
            w.kill()
