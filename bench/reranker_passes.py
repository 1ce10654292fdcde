"""How many leading candidates the cross-encoder's second pass must re-read, chosen by measurement.

Every question's fused top 10 is scored once on each candidate's best two sentences (one batch, as
when every candidate reads two); the rankings of every variant are then computed from those scores:
two sentences each, one each, and one each with the first ``m`` re-read on their second best before
all are ranked again (``MMRAG_CROSS_ENCODER_TOP_CANDIDATES``). For each: how often its first source
differs from the two-sentence ranking's (the reader answers from the first source, and the
abstention weighs its score, so where the first source is the same the answer is too), document
MRR@10, and the pairs scored a question. Served int8 scores move a little with the pairs batched
together, so ``bench.reranker_runtime`` and ``bench.reader`` check the chosen ``m`` as served.

    python -m bench.reranker_passes --data-dir D --squad SQUAD_DEV --coqa COQA_TEST
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from app.rerank import combine

SECOND_PASS = (0, 1, 2, 3, 4, 5, 10)


def _order(fused: list[float], ce: list[float | None], weight: float) -> np.ndarray:
    """As the served reranker orders its head (``app.rerank.combine``); None: that candidate had no text."""
    scores = np.array([np.nan if c is None else c for c in ce], float)
    return np.argsort(-combine(np.array(fused), scores, weight), kind="stable")


def ranking(row: dict, lead: int | None, weight: float) -> np.ndarray:
    """Candidate order: ``lead`` None reads two sentences each; else one, then the first ``lead`` two."""
    both = [b if a is None else (a if b is None else max(a, b)) for a, b in zip(row["s1"], row["s2"])]
    if lead is None:
        return _order(row["fused"], both, weight)
    first = _order(row["fused"], row["s1"], weight)
    ce = list(row["s1"])
    for i in first[:lead]:
        ce[i] = both[i]
    return _order(row["fused"], ce, weight)


def mrr(row: dict, order: np.ndarray) -> float:
    docs = list(dict.fromkeys(row["doc"][i] for i in order))[:10]
    return next((1 / (k + 1) for k, d in enumerate(docs) if d in row["relevant"]), 0.0)


def score_rows(services, reranker, examples, collection: str) -> list[dict]:
    from tqdm import tqdm

    names = {d.id: d.file_name for d in services.store.documents(services.store.collection_id(collection))}
    rows = []
    for ex in tqdm(examples, desc=collection, unit="q"):
        hits = services.pipeline.retriever.retrieve(ex.question, collection, 10, cross_encoder=False).hits[:10]
        pairs, where = [], []
        for i, h in enumerate(hits):
            for j, t in enumerate(h.sentences[:2] if h.sentences else (h.unit.search_text(),)):
                if t.strip():
                    pairs.append((ex.question, t))
                    where.append((i, j))
        scores = reranker.model.predict(pairs) if pairs else []
        s = [[None] * len(hits), [None] * len(hits)]
        for (i, j), v in zip(where, scores):
            s[j][i] = float(v)
        rows.append({"fused": [h.score for h in hits], "s1": s[0], "s2": s[1], "unit": [h.unit.id for h in hits],
                     "doc": [names.get(h.unit.document_id) for h in hits], "relevant": set(ex.relevant_documents)})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True, help="holds the collections 'squad' and 'coqa'")
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--coqa", type=Path, required=True)
    ap.add_argument("--n", type=int, default=500, help="questions per set (seeded)")
    a = ap.parse_args(argv)

    from app.rerank import CrossEncoderReranker
    from app.services import Services
    from eval.datasets import load_dataset
    from mmrag import reranker as packaged
    from mmrag.settings import Settings

    settings = Settings(data_dir=a.data_dir, cross_encoder="")
    services = Services(settings)
    reranker = CrossEncoderReranker(packaged.BUILTIN, cache_dir=settings.model_cache, int8=True, threads=2)
    sets = {"squad": load_dataset(a.squad).examples, "coqa": load_dataset(a.coqa, "first", "test").examples}
    print("| set | cross-encoder reads | first source differs | MRR@10 | pairs a question |\n|---|---|---|---|---|")
    for name, examples in sets.items():
        rows = score_rows(services, reranker, random.Random(13).sample(examples, min(a.n, len(examples))), name)
        base = [ranking(r, None, settings.cross_encoder_weight) for r in rows]
        print(f"| {name} | 2 sentences each | - | {np.mean([mrr(r, o) for r, o in zip(rows, base)]):.4f} | "
              f"{np.mean([sum(x is not None for x in r['s1'] + r['s2']) for r in rows]):.1f} |")
        for lead in SECOND_PASS:
            orders = [ranking(r, lead, settings.cross_encoder_weight) for r in rows]
            differs = sum(r["unit"][o[0]] != r["unit"][b[0]] for r, o, b in zip(rows, orders, base))
            pairs = np.mean([sum(x is not None for x in r["s1"]) + sum(
                r["s2"][i] is not None for i in _order(r["fused"], r["s1"], settings.cross_encoder_weight)[:lead])
                for r in rows])
            print(f"| {name} | 1 each, then the first {lead} on 2 | {differs} of {len(rows)} | "
                  f"{np.mean([mrr(r, o) for r, o in zip(rows, orders)]):.4f} | {pairs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
