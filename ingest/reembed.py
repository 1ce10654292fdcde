"""Re-embed a collection with the models configured now, in place: the way to change text or image
model (or upgrade the bridge) without the source files, which uploads do not keep.

New vectors are staged in SQLite in batches (a crash loses only the staging), then swapped in for
every unit at once with the collection's new model record; the FAISS indexes are then rebuilt from
SQLite, here and in any running server, which sees the record change.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ingest.pipeline import Ingestor

log = logging.getLogger(__name__)
BATCH = 256


def reembed(ingestor: Ingestor, collection: str, progress: bool = True) -> dict:
    store = ingestor.store
    cid = store.docs.collection_id(collection)
    if cid is None:
        raise KeyError(collection)
    t0 = time.perf_counter()
    models = ingestor.model_ids()
    # A model that did not change would give the same vectors again, so they are kept rather than
    # recomputed: images are ~60 ms each, and text with sentence vectors is the slow part of e5.
    recorded = store.docs.models(cid) or {}
    same_text, same_images = recorded.get("text") == models["text"], recorded.get("image") == models["image"]
    with store.writer():
        ids = [r[0] for r in store.docs.query("SELECT id FROM units WHERE collection_id = ? ORDER BY id", (cid,))]
        store.docs.clear_staged()  # leftovers of an interrupted run
        from tqdm import tqdm

        bar = tqdm(total=len(ids), unit="unit", desc=f"re-embed {collection}", disable=not progress, dynamic_ncols=True)
        for start in range(0, len(ids), BATCH):
            by_id = store.docs.units(ids[start:start + BATCH])
            units = [by_id[i] for i in ids[start:start + BATCH] if i in by_id]
            if same_text:
                text = _kept(store, units, "text_vec")
                stored = store.docs.sentence_vectors(np.array([u.id for u in units], np.int64))
                sentences = [stored.get(u.id) for u in units]
            else:
                text, sentences = ingestor._text_vectors(units)
            images = _kept(store, units, "image_vec") if same_images else ingestor._image_vectors(units)
            store.docs.stage_vectors([(u.id, t, i, s) for u, t, i, s in zip(units, text, images, sentences)])
            bar.update(len(units))
        bar.close()
        n = store.docs.swap_staged(cid, models)
        store.indexes(cid)  # the model record moved: vectors rebuild from SQLite
        store.save(cid)
    seconds = time.perf_counter() - t0
    log.info("collection %s: %d units re-embedded with %s in %.1fs", collection, n, models, seconds)
    return {"collection": collection, "units": n, "models": models, "seconds": round(seconds, 1),
            "kept": [kind for kind, same in (("text", same_text), ("image", same_images)) if same]}


def _kept(store, units, column: str) -> list[np.ndarray | None]:
    got, matrix = store.docs.vectors(np.array([u.id for u in units], np.int64), column)
    kept = {int(uid): row for uid, row in zip(got, matrix)}
    return [kept.get(u.id) for u in units]
