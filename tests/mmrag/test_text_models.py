"""Contract every text embedder passes (both packaged models), and what only the multilingual default does."""

import numpy as np
import pytest

PASSAGES = [
    "The lighthouse keeper climbs 120 steps every evening to light the lamp.",
    "Sourdough bread rises slowly because wild yeast ferments the dough.",
    "The Yangtze is the longest river in Asia and flows into the East China Sea.",
]
QUERIES = ["Who lights the lamp in the lighthouse?", "Why does sourdough rise slowly?", "Which river is the longest in Asia?"]


@pytest.fixture(params=["text_embedder", "minilm_embedder"])
def embedder(request):
    return request.getfixturevalue(request.param)


def test_unit_vectors_of_the_declared_width(embedder):
    vecs = embedder.embed(PASSAGES + ["", "x"], kind="passage")
    assert vecs.shape == (5, embedder.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs[[0, 1, 2, 4]], axis=1), 1.0, atol=1e-4)
    assert embedder.embed([], kind="query").shape == (0, embedder.dim)


def test_each_question_finds_its_passage(embedder):
    sim = embedder.embed(QUERIES, kind="query") @ embedder.embed(PASSAGES, kind="passage").T
    assert list(sim.argmax(1)) == [0, 1, 2]


def test_batches_give_the_same_vectors_as_single_texts(embedder):
    together = embedder.embed(PASSAGES, kind="passage")
    alone = np.stack([embedder.embed([p], kind="passage")[0] for p in PASSAGES])
    np.testing.assert_allclose(together, alone, atol=2e-3)


def test_default_is_multilingual_and_uses_query_and_passage_prefixes(text_embedder):
    assert text_embedder.name == "packaged:multilingual-e5-small"
    zh = ["长江是亚洲最长的河流，流入东海。", "酸面包发酵很慢，因为野生酵母。"]
    sim = text_embedder.embed(["亚洲最长的河是哪条？", "Why does sourdough rise slowly?"], kind="query") @ text_embedder.embed(zh).T
    assert list(sim.argmax(1)) == [0, 1]  # Chinese to Chinese, and English to Chinese
    q, p = text_embedder.embed(["lighthouse"], kind="query"), text_embedder.embed(["lighthouse"], kind="passage")
    assert float(q[0] @ p[0]) < 0.999  # e5 was trained with "query: " / "passage: " prefixes
