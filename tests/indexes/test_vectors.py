import numpy as np

from indexes.vectors import VectorIndex


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


def test_grows_into_ivf_and_still_finds_neighbours(tmp_path):
    vecs = unit_vectors(3000, seed=1)
    index = VectorIndex(32, flat_max=1000, nprobe=64)
    index.add(np.arange(3000), vecs)
    assert index.kind == "ivf" and len(index) == 3000
    _, hits = index.search(vecs[:50], 1)
    assert (hits[:, 0] == np.arange(50)).mean() >= 0.95
    index.remove(np.array([0]))
    assert 0 not in index.ids() and len(index) == 2999
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 32, flat_max=1000, nprobe=64)
    assert loaded.kind == "ivf" and sorted(loaded.ids().tolist()) == list(range(1, 3000))


def test_empty_index_searches_to_nothing():
    scores, hits = VectorIndex(8).search(unit_vectors(2, 8), 5)
    assert hits.shape == (2, 0)
