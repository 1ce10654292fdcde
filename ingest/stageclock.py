"""Seconds a parse spends in its costly steps (OCR, layout, table structure), reported per document.

Parsing runs in worker processes, so the pipeline cannot time these steps itself: each step adds
its seconds to the current thread's tally while a parse is ``collecting``, and the tally travels
back with the parsed document (``ParsedDocument.timings``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def collecting() -> Iterator[dict[str, float]]:
    """Start a tally for one parse (this thread); yields the dict the steps fill."""
    previous = getattr(_local, "tally", None)
    _local.tally = tally = {}
    try:
        yield tally
    finally:
        _local.tally = previous


def timed(stage: str):
    """Decorator: the call's seconds count toward ``stage`` in the current tally, if any."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                tally = getattr(_local, "tally", None)
                if tally is not None:
                    tally[stage] = tally.get(stage, 0.0) + time.perf_counter() - t0

        return inner

    return wrap
