"""Re-embedding a collection in place with other models: all at once, seen by a running reader too."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes.records import StagedVectors

IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
TEXTS = {
    "lighthouse.txt": "The harbour lighthouse was built in 1872 from granite. Its lamp is lit every evening.",
    "bread.txt": "Sourdough rises slowly because wild yeast ferments the dough. Bakers feed the starter daily.",
}


@pytest.fixture
def old_collection(store, settings, tmp_path, minilm_embedder, image_embedder):
    from ingest.pipeline import Ingestor

    folder = tmp_path / "src"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text)
    shutil.copy(IMAGES / "drums.png", folder / "IMG_0001.png")
    Ingestor(store, settings, minilm_embedder, image_embedder).ingest_paths([folder], "notes", progress=False)
    return store.collection_id("notes")


def test_reembed_swaps_every_vector_and_the_model_record(store, settings, old_collection, text_embedder, minilm_embedder,
                                                         image_embedder):
    from app.retrieval import Filters, HybridRetriever
    from indexes.store import LocalStore
    from ingest.pipeline import Ingestor
    from ingest.reembed import reembed
    from mmrag.errors import ModelMismatch

    cid = old_collection
    reader = LocalStore(store.data_dir)  # a running server's view, loaded before the change
    assert reader.indexes(cid).vectors["text"] is not None
    result = reembed(Ingestor(store, settings, text_embedder, image_embedder), "notes", progress=False)
    assert result["units"] == 3 and store.models(cid)["text"] == "packaged:multilingual-e5-small"

    ids, matrix = store.docs.vectors(store.docs.unit_ids(cid, "text_vec"), "text_vec")
    units = store.units(list(map(int, ids)))
    expected = text_embedder.embed([units[int(i)].search_text() for i in ids], kind="passage")
    np.testing.assert_allclose(matrix, expected, atol=1e-5)
    sentences = store.docs.sentence_vectors(ids)
    some = next(iter(sentences))
    first = units[some].text.split(". ")[0] + "."
    assert float(sentences[some][0] @ text_embedder.embed([first])[0]) > 0.99  # float16 storage

    query = text_embedder.embed(["When was the harbour lighthouse built?"], kind="query")
    scores, found = reader.indexes(cid).vectors["text"].search(query, 1)
    assert units[int(found[0][0])].text == TEXTS["lighthouse.txt"]
    assert scores[0][0] == pytest.approx(float(expected[list(ids).index(found[0][0])] @ query[0]), abs=1e-4)

    image_ids = store.docs.unit_ids(cid, "image_vec")
    assert len(image_ids) == 1 and len(reader.indexes(cid).vectors["image"]) == 1  # the image kept its (re-made) vector
    hits = HybridRetriever(reader, settings, text_embedder, image_embedder).retrieve("a drum kit", "notes", 1, Filters(types=["image"])).hits
    assert hits[0].unit.id == int(image_ids[0]) and "image" in hits[0].features
    with pytest.raises(ModelMismatch):
        HybridRetriever(reader, settings, minilm_embedder).retrieve("lighthouse", "notes")


def test_an_incomplete_staging_changes_nothing(store, old_collection, minilm_embedder):
    cid = old_collection
    ids = store.docs.unit_ids(cid, "text_vec")
    before = store.docs.vectors(ids, "text_vec")[1].copy()
    store.stage_vectors([StagedVectors(int(ids[0]), np.ones(384, np.float32) / np.sqrt(384), None, None)])
    with pytest.raises(RuntimeError, match="staged 1 of 3"):
        store.docs.swap_staged(cid, {"text": "other", "image": "none"})
    np.testing.assert_array_equal(store.docs.vectors(ids, "text_vec")[1], before)
    assert store.models(cid)["text"] == "packaged:all-MiniLM-L6-v2"


def test_vectors_of_an_unchanged_model_are_kept_not_recomputed(store, settings, tmp_path, text_embedder, image_embedder):
    """An image-model upgrade re-embeds the images only: the text vectors (the slow part with e5 and
    sentence vectors) stay as stored. A marked text vector proves they were not recomputed."""
    import json

    from ingest.pipeline import Ingestor
    from ingest.reembed import reembed

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text(TEXTS["lighthouse.txt"])
    shutil.copy(IMAGES / "drums.png", folder / "IMG_0001.png")
    ingestor = Ingestor(store, settings, text_embedder, image_embedder)
    ingestor.ingest_paths([folder], "notes", progress=False)
    cid = store.collection_id("notes")
    text_id = int(store.docs.unit_ids(cid, "text_vec")[0])
    marker = np.zeros(text_embedder.dim, np.float32)
    marker[0] = 1.0
    store.docs.query("UPDATE units SET text_vec = ? WHERE id = ?", (marker.tobytes(), text_id))
    image_id = int(store.docs.unit_ids(cid, "image_vec")[0])
    image_marker = np.zeros(image_embedder.dim, np.float32)
    image_marker[0] = 1.0
    store.docs.query("UPDATE units SET image_vec = ? WHERE id = ?", (image_marker.tobytes(), image_id))
    sentences_before = store.docs.sentence_vectors(np.array([text_id]))[text_id]
    store.docs.query("UPDATE collections SET models = ? WHERE id = ?",
                     (json.dumps({"text": text_embedder.name, "image": "an-older-bridge.pt"}), cid))

    result = reembed(ingestor, "notes", progress=False)
    assert result["kept"] == ["text"] and store.models(cid)["image"] == image_embedder.name
    np.testing.assert_array_equal(store.docs.vectors(np.array([text_id]), "text_vec")[1][0], marker)
    np.testing.assert_array_equal(store.docs.sentence_vectors(np.array([text_id]))[text_id], sentences_before)
    image = store.docs.vectors(np.array([image_id]), "image_vec")[1][0]
    assert not np.array_equal(image, image_marker) and abs(np.linalg.norm(image) - 1) < 1e-4  # re-made
