"""Re-embed a collection with the models configured now, in place: the way to change text or image
model (or upgrade the bridge) without the source files, which uploads do not keep.

New vectors are staged in the store in batches (a crash loses only the staging), then swapped in for
every unit at once with the collection's new model record; the local backend's FAISS indexes are then
rebuilt from SQLite, here and in any running server, which sees the record change.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from indexes.records import StagedVectors
from ingest.pipeline import Ingestor

log = logging.getLogger(__name__)
BATCH = 256


def reembed(ingestor: Ingestor, collection: str, progress: bool = True) -> dict:
    store = ingestor.store
    cid = store.collection_id(collection)
    if cid is None:
        raise KeyError(collection)
    t0 = time.perf_counter()
    models = ingestor.model_ids()
    # A model that did not change would give the same vectors again, so they are kept rather than
    # recomputed: images are ~60 ms each, and text with sentence vectors is the slow part of e5.
    recorded = store.models(cid) or {}
    same_text, same_images = recorded.get("text") == models["text"], recorded.get("image") == models["image"]
    with store.writer():
        ids = [int(i) for i in store.unit_ids(cid)]
        store.clear_staged(cid)  # leftovers of an interrupted run
        from tqdm import tqdm

        bar = tqdm(total=len(ids), unit="unit", desc=f"re-embed {collection}", disable=not progress, dynamic_ncols=True)
        for start in range(0, len(ids), BATCH):
            by_id = store.units(ids[start:start + BATCH])
            units = [by_id[i] for i in ids[start:start + BATCH] if i in by_id]
            if same_text:
                text = _kept(store, units, "text")
                stored = store.sentence_vectors([u.id for u in units])
                sentences = [stored.get(u.id) for u in units]
            else:
                text, sentences = ingestor._text_vectors(units)
            images = _kept(store, units, "image") if same_images else ingestor._image_vectors(units)
            store.stage_vectors([StagedVectors(u.id, t, i, s) for u, t, i, s in zip(units, text, images, sentences)])
            bar.update(len(units))
        bar.close()
        n = store.swap_staged(cid, models)
    seconds = time.perf_counter() - t0
    log.info("collection %s: %d units re-embedded with %s in %.1fs", collection, n, models, seconds)
    return {"collection": collection, "units": n, "models": models, "seconds": round(seconds, 1),
            "kept": [kind for kind, same in (("text", same_text), ("image", same_images)) if same]}


def _kept(store, units, modality: str) -> list[np.ndarray | None]:
    got, matrix = store.vectors([u.id for u in units], modality)
    kept = {int(uid): row for uid, row in zip(got, matrix)}
    return [kept.get(u.id) for u in units]
