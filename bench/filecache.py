"""Arrays computed per file, kept across benchmark runs in one ``.npz`` keyed by path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def per_file(paths: list[str], cache: Path, compute: Callable[[list[str]], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Rows for ``paths`` of each array ``compute`` returns (name -> one row per path given to it);
    only the paths not in ``cache`` yet are computed, and the cache is extended with them."""
    known: dict[str, dict[str, np.ndarray]] = {}
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "paths"}
            known = {p: {k: v[i] for k, v in arrays.items()} for i, p in enumerate(z["paths"].tolist())}
    todo = [p for p in dict.fromkeys(paths) if p not in known]
    if todo:
        fresh = compute(todo)
        for i, p in enumerate(todo):
            known[p] = {k: v[i] for k, v in fresh.items()}
        rows = list(known.values())
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, paths=np.array(list(known)), **{k: np.stack([r[k] for r in rows]) for k in rows[0]})
    return {k: np.stack([known[p][k] for p in paths]) for k in known[paths[0]]}
