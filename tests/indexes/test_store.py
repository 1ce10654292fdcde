"""The store keeps SQLite and every index in agreement, across processes and damaged snapshots."""

import numpy as np
import pytest

from indexes.records import NewDocument, NewUnit
from indexes.store import LocalStore
from indexes.vectors import IndexParams, VectorIndex
from mmrag.units import Unit


def units(n, seed=0, with_image=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v = rng.normal(size=16).astype(np.float32)
        unit = Unit("image" if with_image and i == 0 else "text", f"passage {seed} number {i} about topic{seed}", page=1,
                    heading=["H"], position=i)
        out.append(NewUnit(unit, v / np.linalg.norm(v), (v[:8] / np.linalg.norm(v[:8])) if with_image and i == 0 else None))
    return out


def new_doc(cid, source, name, content_hash, fmt, pages, size, rows, original_path=None):
    return NewDocument(cid, source, name, content_hash, fmt, pages, size, rows, original_path)


def all_ids(store, cid):
    ci = store.indexes(cid)
    return {"text": set(ci.vectors["text"].ids().tolist()) if ci.vectors["text"] else set(),
            "image": set(ci.vectors["image"].ids().tolist()) if ci.vectors["image"] else set(),
            "bm25": set(ci.bm25.ids().tolist())}


def db_ids(store, cid):
    return set(store.docs.unit_ids(cid).tolist())


@pytest.fixture(params=["exact", "hnsw"])
def store(tmp_path, request):
    # every store test runs twice: exact search, and HNSW from the first vectors on (it masks removals)
    params = IndexParams() if request.param == "exact" else IndexParams(flat_max=2, ann="hnsw")
    return LocalStore(tmp_path / "data", params)


def test_commit_puts_units_in_every_index(store):
    cid = store.docs.collection_id("c", create=True)
    doc_id, ids = store.commit_document(new_doc(cid, "/a.pdf", "a.pdf", "h1", "pdf", 1, 10, units(5, with_image=True)))
    got = all_ids(store, cid)
    assert got["text"] == got["bm25"] == set(ids) and got["image"] == {ids[0]}
    assert store.docs.document(doc_id).n_units == 5


def test_replacing_a_document_swaps_its_units_everywhere(store):
    cid = store.docs.collection_id("c", create=True)
    _, old = store.commit_document(new_doc(cid, "/a.pdf", "a.pdf", "h1", "pdf", 1, 10, units(5, seed=1)))
    _, new = store.commit_document(new_doc(cid, "/a.pdf", "a.pdf", "h2", "pdf", 1, 10, units(3, seed=2)))
    got = all_ids(store, cid)
    assert got["text"] == got["bm25"] == set(new) and not set(old) & got["text"]
    ids, _ = store.indexes(cid).bm25.search("topic1", 10)
    assert len(ids) == 0  # the old version's words are gone


def test_delete_removes_from_every_index_and_snapshot(store, tmp_path):
    cid = store.docs.collection_id("c", create=True)
    a, _ = store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(4, seed=1, with_image=True)))
    _, keep = store.commit_document(new_doc(cid, "/b", "b", "h", "text", 1, 1, units(4, seed=2)))
    store.delete_document(a)
    assert all_ids(store, cid) == {"text": set(keep), "image": set(), "bm25": set(keep)}
    fresh = LocalStore(tmp_path / "data", store.params)  # reload from the snapshot
    assert all_ids(fresh, cid)["text"] == set(keep)


def test_a_second_process_sees_writes_through_the_generation(store, tmp_path):
    cid = store.docs.collection_id("c", create=True)
    store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(3, seed=1)))
    reader = LocalStore(tmp_path / "data", store.params)
    assert all_ids(reader, cid)["text"] == db_ids(store, cid)
    store.commit_document(new_doc(cid, "/b", "b", "h", "text", 1, 1, units(3, seed=2)))  # reader's cache is now stale
    assert all_ids(reader, cid)["bm25"] == db_ids(store, cid)


def test_snapshot_behind_sqlite_is_caught_up_on_load(store, tmp_path):
    cid = store.docs.collection_id("c", create=True)
    store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(3, seed=1)))
    store.flush(cid)
    store.commit_document(new_doc(cid, "/b", "b", "h", "text", 1, 1, units(3, seed=2)))  # committed, not snapshotted
    fresh = LocalStore(tmp_path / "data", store.params)
    got = all_ids(fresh, cid)
    assert got["text"] == got["bm25"] == db_ids(store, cid) and len(got["text"]) == 6


def test_damaged_snapshot_is_rebuilt_from_sqlite(store, tmp_path):
    cid = store.docs.collection_id("c", create=True)
    store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(3, seed=1)))
    store.flush(cid)
    (tmp_path / "data" / "indexes" / str(cid) / "text.faiss").write_bytes(b"garbage")
    got = all_ids(LocalStore(tmp_path / "data", store.params), cid)
    assert got["text"] == got["bm25"] == db_ids(store, cid)


def test_failure_of_a_new_version_keeps_the_old_one(store):
    cid = store.docs.collection_id("c", create=True)
    doc_id, ids = store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(3)))
    store.docs.record_failure(cid, "/a", "a", "h2", "PDF is truncated")
    doc = store.docs.document(doc_id)
    assert doc.status == "done" and "truncated" in doc.error
    assert all_ids(store, cid)["text"] == set(ids)


def test_unit_ids_are_never_reused(store):
    cid = store.docs.collection_id("c", create=True)
    a, first = store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(3)))
    store.delete_document(a)
    _, second = store.commit_document(new_doc(cid, "/b", "b", "h", "text", 1, 1, units(3)))
    assert min(second) > max(first)


def test_a_collection_refuses_vectors_and_queries_from_other_models(store, settings, tmp_path, text_embedder, minilm_embedder):
    from app.retrieval import HybridRetriever
    from ingest.pipeline import Ingestor
    from mmrag.errors import ModelMismatch

    doc = tmp_path / "note.txt"
    doc.write_text("The harbour lighthouse was built in 1872 from granite.")
    Ingestor(store, settings, minilm_embedder, None).ingest_paths([doc], "notes", progress=False)
    assert store.docs.models(store.docs.collection_id("notes")) == {"text": "packaged:all-MiniLM-L6-v2"}  # no image model in use
    other = tmp_path / "other.txt"
    other.write_text("Granite is an igneous rock.")
    with pytest.raises(ModelMismatch, match="all-MiniLM-L6-v2.*multilingual-e5-small.*MMRAG_TEXT_MODEL"):
        Ingestor(store, settings, text_embedder, None).ingest_paths([other], "notes", progress=False)
    with pytest.raises(ModelMismatch):
        HybridRetriever(store, settings, text_embedder).retrieve("lighthouse", "notes")
    hits = HybridRetriever(store, settings, minilm_embedder).retrieve("lighthouse", "notes").hits
    assert [h.unit.text for h in hits] == [doc.read_text()]  # the failed ingestion left the collection as it was


def test_collections_from_before_model_records_get_the_old_defaults(store, settings, tmp_path, text_embedder, minilm_embedder):
    from app.retrieval import HybridRetriever
    from indexes.docstore import DocStore
    from ingest.pipeline import Ingestor
    from mmrag.errors import ModelMismatch

    doc = tmp_path / "note.txt"
    doc.write_text("The harbour lighthouse was built in 1872 from granite.")
    Ingestor(store, settings, minilm_embedder, None).ingest_paths([doc], "old", progress=False)
    store.docs.query("ALTER TABLE collections DROP COLUMN models")  # as a data dir of the previous version has it
    store.docs.close()
    store.docs = DocStore(store.docs.path)
    assert store.docs.models(store.docs.collection_id("old")) == {"text": "packaged:all-MiniLM-L6-v2", "image": "none", "assumed": True}
    with pytest.raises(ModelMismatch, match="assumed"):
        HybridRetriever(store, settings, text_embedder).retrieve("lighthouse", "old")
    assert HybridRetriever(store, settings, minilm_embedder).retrieve("lighthouse", "old").hits


def test_a_model_without_vectors_in_the_collection_does_not_conflict(store, settings, tmp_path, text_embedder, image_embedder):
    """A text-only collection recorded with another image model: nothing to mix, so nothing is refused."""
    import json

    from app.retrieval import HybridRetriever
    from ingest.pipeline import Ingestor

    doc = tmp_path / "note.txt"
    doc.write_text("The harbour lighthouse was built in 1872 from granite.")
    ingestor = Ingestor(store, settings, text_embedder, image_embedder)
    ingestor.ingest_paths([doc], "notes", progress=False)
    cid = store.docs.collection_id("notes")
    store.docs.query("UPDATE collections SET models = ? WHERE id = ?",
                     (json.dumps({"text": text_embedder.name, "image": "an-older-bridge.pt"}), cid))
    assert HybridRetriever(store, settings, text_embedder, image_embedder).retrieve("lighthouse", "notes").hits
    store.docs.bind_models(cid, ingestor.model_ids())  # the next ingestion records the image model it will use
    assert store.docs.models(cid)["image"] == image_embedder.name


def test_an_ivf_snapshot_is_rebuilt_as_hnsw_once_on_load(tmp_path):
    ivf_store = LocalStore(tmp_path / "data", IndexParams(flat_max=2, ann="ivf"))
    cid = ivf_store.docs.collection_id("c", create=True)
    _, ids = ivf_store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(40, seed=1)))
    ivf_store.flush(cid)
    assert ivf_store.indexes(cid).vectors["text"].kind == "ivf"
    hnsw_params = IndexParams(flat_max=2, ann="hnsw")
    assert LocalStore(tmp_path / "data", hnsw_params).indexes(cid).vectors["text"].kind == "hnsw"
    # the snapshot on disk was replaced by the rebuilt index
    on_disk = VectorIndex.load(tmp_path / "data" / "indexes" / str(cid) / "text.faiss", 16, hnsw_params)
    assert on_disk.kind == "hnsw" and set(on_disk.ids().tolist()) == set(ids)


def test_a_rebuilt_snapshot_is_not_saved_while_another_process_writes(tmp_path):
    ivf_store = LocalStore(tmp_path / "data", IndexParams(flat_max=2, ann="ivf"))
    cid = ivf_store.docs.collection_id("c", create=True)
    ivf_store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(40, seed=1)))
    ivf_store.flush(cid)
    path = tmp_path / "data" / "indexes" / str(cid) / "text.faiss"
    before = path.read_bytes()
    hnsw_params = IndexParams(flat_max=2, ann="hnsw")
    with LocalStore(tmp_path / "data", hnsw_params).writer():  # an ingestion elsewhere holds the data dir
        assert LocalStore(tmp_path / "data", hnsw_params).indexes(cid).vectors["text"].kind == "hnsw"
    assert path.read_bytes() == before  # the writer's snapshot is left to the writer


def test_hnsw_replacements_are_compacted_out_of_the_index(tmp_path):
    store = LocalStore(tmp_path / "data", IndexParams(flat_max=2, ann="hnsw"))
    cid = store.docs.collection_id("c", create=True)
    store.commit_document(new_doc(cid, "/a", "a", "h", "text", 1, 1, units(10, seed=1)))
    _, keep = store.commit_document(new_doc(cid, "/b", "b", "h", "text", 1, 1, units(50, seed=2)))
    store.commit_document(new_doc(cid, "/a", "a", "h2", "text", 1, 1, units(10, seed=3)))  # 10 of 60 masked (17%): kept
    index = store.indexes(cid).vectors["text"]
    assert index._index.ntotal == 70 and len(index) == 60
    store.commit_document(new_doc(cid, "/a", "a", "h3", "text", 1, 1, units(10, seed=4)))  # 20 of 70 (29%): compacted
    assert index._index.ntotal == 60 and len(index) == 60 and index.kind == "hnsw"
    assert set(keep) <= set(index.ids().tolist()) == db_ids(store, cid)
