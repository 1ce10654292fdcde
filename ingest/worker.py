"""The parse worker's process: ``python -m ingest.worker``, started by ``ingest.workers.ParseWorker``.

It reads (settings, blob dir) once, then (path, name, assets, drafts) tasks from stdin, and answers
each with (parsed, error, seconds) on the pipe it was given as stdout, after any number of
``ingest.drafts.Draft`` messages when ``drafts`` is true. It dies with its parent: the
kernel sends SIGKILL when the parent goes (Linux), and a watchdog thread checks the parent's pid
elsewhere, so a ``kill -9`` of ``mmrag ingest`` or of the server leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    parent = int(os.environ.get("MMRAG_WORKER_PARENT", "0") or 0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    if parent:
        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    _die_with_parent()
    # The protocol owns the original stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)

    from ingest.workers import recv, send

    settings, blob_dir = recv(inp)
    from ingest.pipeline import parse_file

    send(out, "ready")

    while True:
        try:
            task = recv(inp)
        except Exception:  # the parent closed the pipe: done
            return 0
        path, name, assets, drafts = task
        on_draft = (lambda draft: send(out, draft)) if drafts else None
        send(out, parse_file(path, name, settings, blob_dir, assets, on_draft))


if __name__ == "__main__":
    raise SystemExit(main())
