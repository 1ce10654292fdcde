import threading

import numpy as np
import pytest

from indexes.vectors import IndexParams, VectorIndex


def unit_vectors(n, dim=32, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_flat_search_is_exact_and_ids_are_the_units_ids():
    vecs = unit_vectors(200)
    ids = np.arange(1000, 1200)
    index = VectorIndex(32)
    index.add(ids, vecs)
    scores, hits = index.search(vecs[:5], 3)
    assert hits[:, 0].tolist() == ids[:5].tolist()
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    assert sorted(index.ids().tolist()) == ids.tolist()


def test_remove_takes_vectors_out():
    vecs = unit_vectors(50)
    index = VectorIndex(32)
    index.add(np.arange(50), vecs)
    assert index.remove(np.array([0, 1, 2])) == 3
    _, hits = index.search(vecs[:1], 5)
    assert 0 not in hits[0] and len(index) == 47


@pytest.mark.parametrize("ann", ["ivf", "hnsw"])
def test_grows_into_an_approximate_index_and_still_finds_neighbours(tmp_path, ann):
    vecs = unit_vectors(3000, seed=1)
    params = IndexParams(flat_max=1000, ann=ann, nprobe=64)
    index = VectorIndex(32, params)
    index.add(np.arange(1000), vecs[:1000])
    assert index.kind == "flat"
    index.add(np.arange(1000, 3000), vecs[1000:])  # past flat_max: rebuilt as the approximate kind
    assert index.kind == ann and len(index) == 3000
    _, hits = index.search(vecs[:50], 1)
    assert (hits[:, 0] == np.arange(50)).mean() >= 0.95
    assert index.remove(np.array([0, 5000])) == 1  # 5000 was never there
    _, hits = index.search(vecs[:1], 10)
    assert 0 not in hits[0] and hits[0, 0] != -1
    assert 0 not in index.ids() and len(index) == 2999
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 32, params)
    assert loaded.kind == ann
    if ann == "ivf":
        assert sorted(loaded.ids().tolist()) == list(range(1, 3000))
    else:  # HNSW masks removals in memory; the store's reconcile masks them again after a reload
        assert 0 in loaded.ids()
        loaded.remove(np.array([0]))
        assert sorted(loaded.ids().tolist()) == list(range(1, 3000))


def test_searches_go_on_while_the_approximate_index_is_built(monkeypatch):
    vecs = unit_vectors(300, seed=5)
    index = VectorIndex(32, IndexParams(flat_max=200, ann="hnsw"))
    index.add(np.arange(200), vecs[:200])
    building, release = threading.Event(), threading.Event()
    real_build = index._build

    def slow_build(ids, vectors):  # holds the rebuild open until the search below has answered
        building.set()
        assert release.wait(10)
        return real_build(ids, vectors)

    monkeypatch.setattr(index, "_build", slow_build)
    writer = threading.Thread(target=index.add, args=(np.arange(200, 300), vecs[200:]))
    writer.start()
    assert building.wait(10)
    _, hits = index.search(vecs[250:251], 1)  # answered by the flat index, which already holds the new vector
    assert hits[0, 0] == 250 and index.kind == "flat"
    release.set()
    writer.join(10)
    assert index.kind == "hnsw" and len(index) == 300


def test_hnsw_masks_removed_ids_then_rebuilds_without_them():
    vecs = unit_vectors(1500, seed=2)
    index = VectorIndex.build(np.arange(1500), vecs, 32, IndexParams(flat_max=100, ann="hnsw"))
    assert index.kind == "hnsw"
    index.remove(np.arange(0, 200))  # 13%: masked
    assert index._index.ntotal == 1500 and len(index) == 1300
    _, hits = index.search(vecs[:200], 5)
    assert not np.isin(hits, np.arange(200)).any()
    assert not index.needs_compaction
    index.remove(np.arange(200, 400))  # past 20% masked: the owner (the store) compacts
    assert index.needs_compaction and index._index.ntotal == 1500 and len(index) == 1100
    index.compact()
    assert index._index.ntotal == 1100 and len(index) == 1100 and index.kind == "hnsw" and not index.needs_compaction
    _, hits = index.search(vecs[400:450], 1)
    assert (hits[:, 0] == np.arange(400, 450)).mean() >= 0.95


def test_hnsw_id_that_comes_back_gets_its_new_vector():
    vecs = unit_vectors(600, seed=3)
    index = VectorIndex.build(np.arange(500), vecs[:500], 32, IndexParams(flat_max=100, ann="hnsw"))
    index.remove(np.array([7]))
    index.add(np.array([7]), vecs[550:551])  # the id is reused with other content
    scores, hits = index.search(vecs[550:551], 1)
    assert hits[0, 0] == 7 and scores[0, 0] > 0.99
    _, hits = index.search(vecs[7:8], 3)
    assert hits[0, 0] != 7  # the old vector is gone
    assert sorted(index.ids().tolist()) == list(range(500))


def test_shrinks_back_to_exact_when_rebuilt_small():
    vecs = unit_vectors(300, seed=4)
    index = VectorIndex.build(np.arange(300), vecs, 32, IndexParams(flat_max=100, ann="hnsw"))
    index.remove(np.arange(250))
    index.compact()
    assert index.kind == "flat" and sorted(index.ids().tolist()) == list(range(250, 300))


def test_empty_index_searches_to_nothing():
    scores, hits = VectorIndex(8).search(unit_vectors(2, 8), 5)
    assert hits.shape == (2, 0)


def test_a_snapshot_of_another_kind_is_rebuilt_to_the_settings(tmp_path):
    vecs = unit_vectors(1500, seed=5)
    old = VectorIndex.build(np.arange(1500), vecs, 32, IndexParams(flat_max=1000, ann="ivf", nprobe=64))
    old.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 32, IndexParams(flat_max=1000, ann="hnsw"))
    assert loaded.kind == "ivf" and loaded.conform() and loaded.kind == "hnsw"
    assert sorted(loaded.ids().tolist()) == list(range(1500))
    scores, hits = loaded.search(vecs[:50], 1)  # the vectors came through the rebuild intact
    assert (hits[:, 0] == np.arange(50)).mean() >= 0.95 and scores[:, 0].max() > 0.99
    assert not loaded.conform()
    exact = VectorIndex.load(tmp_path / "v.faiss", 32, IndexParams(flat_max=5000))
    assert exact.conform() and exact.kind == "flat" and exact.search(vecs[:3], 1)[1][:, 0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_a_filter_is_applied_inside_the_search_of_every_kind(kind):
    vecs = unit_vectors(3000, seed=3)
    ids = np.arange(5000, 8000)
    params = {"flat": IndexParams(), "hnsw": IndexParams(flat_max=100, ann="hnsw"),
              "ivf": IndexParams(flat_max=100, ann="ivf", nprobe=256)}[kind]  # ivf: every list, recall is not the point here
    index = VectorIndex.build(ids, vecs, 32, params)
    assert index.kind == kind
    if kind == "hnsw":
        index.remove(ids[:10])  # masked ids and the filter combine
    allowed = ids[::7]  # a seventh of the index, the masked ids among them
    queries = vecs[[7, 700, 2100]]
    scores, hits = index.search(queries, 10, allowed)
    live = np.setdiff1d(allowed, ids[:10]) if kind == "hnsw" else allowed
    assert set(hits.ravel().tolist()) <= set(live.tolist())
    exact = vecs[live - 5000] @ queries.T
    for q in range(len(queries)):
        best = set(live[np.argsort(-exact[:, q])[:10]].tolist())
        assert len(best & set(hits[q].tolist())) >= 9  # approximate kinds may miss one
    _, none = index.search(queries, 5, np.zeros(0, np.int64))
    assert none.size == 0
