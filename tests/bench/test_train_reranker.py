"""bench.train_reranker builds its groups from the retriever's candidates and writes a delta that loads."""

import numpy as np

from app.retrieval import HybridRetriever
from bench.train_reranker import train, training_groups
from eval.datasets import Example
from mmrag import reranker

TOWNS = ["Arden", "Belmor", "Caskill", "Dunmere", "Elswick", "Farrow", "Glenby", "Harlow", "Ingleby", "Jarrow", "Kelso", "Lydford"]


def test_groups_pair_the_answer_sentence_with_candidates_negatives_and_training_writes_a_loadable_delta(
        tmp_path, ingestor, settings, text_embedder):
    corpus = tmp_path / "towns"
    corpus.mkdir()
    for i, town in enumerate(TOWNS):  # twelve passages of one shape: every other one is a hard negative
        (corpus / f"{town}.txt").write_text(
            f"{town} is a market town on the river. Its bridge was built in {1700 + 7 * i}. "
            f"The town hall of {town} holds a museum of local history. About {2000 + 350 * i} people live in {town}.\n")
    ingestor.ingest_paths([corpus], "towns", progress=False)
    examples = [Example(str(i), f"When was the bridge in {t} built?", [str(1700 + 7 * i)], [f"{t}.txt"]) for i, t in enumerate(TOWNS[:4])]
    retriever = HybridRetriever(ingestor.store, settings, text_embedder)
    groups = training_groups(retriever, examples, "towns")
    assert len(groups) == 4
    for (question, texts), ex in zip(groups, examples):
        assert question == ex.question and len(texts) == 8
        assert ex.answers[0] in texts[0] and "bridge" in texts[0]  # the answer sentence comes first
        assert all(ex.answers[0] not in t for t in texts[1:])

    out = tmp_path / "delta.npz"
    info = train(groups, out, batch_groups=2, threads=1, max_steps=2, meta={"dataset": "towns"})
    assert info["steps"] == 2 and info["dataset"] == "towns" and info["inputs"] == "sentences"
    meta = reranker.delta_meta(out)
    assert meta["frozen"][0] == "bert.embeddings." and meta["max_length"] == 96
    with np.load(out) as z:  # only what training changed: no embeddings, no frozen layers
        assert not [n for n in z.files if n.startswith(tuple(meta["frozen"]))]
        assert "classifier.weight" in z.files and "bert.encoder.layer.5.output.dense.weight" in z.files
    model = reranker.build_model(out)
    assert model.classifier.weight.shape == (1, 384)
