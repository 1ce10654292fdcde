"""Exact against approximate (IVF, HNSW) search on real vectors: what the ``faiss_*`` settings cost in recall.

    python -m bench.vector_index --data-dir DATA_DIR --questions ../shared/data/squad/squaddev_v1.1.json

Vectors: every passage and sentence vector stored in DATA_DIR (an ingested data dir; real text, so
the vectors cluster as a user's do, unlike the latency benchmark's random filler). Queries: questions
from an eval data set, embedded by the data dir's text model. For each IVF setting: recall@k of the
exact top-k (the share of the exact search's k best ids that IVF returns), and latency per query
against exact search over the same vectors, and build time.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np


def real_vectors(data_dir: Path) -> np.ndarray:
    from indexes.store import LocalStore

    store = LocalStore(data_dir)
    ids = np.concatenate([store.unit_ids(c.id) for c in store.collections()] or [np.zeros(0, np.int64)])
    _, matrix = store.vectors(ids, "text")
    dim = matrix.shape[1]
    out = list(matrix)
    for m in store.sentence_vectors(ids).values():
        if m.shape[1] == dim:
            out.extend(m)
    x = np.vstack(out)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def per_query_ms(index, queries: np.ndarray, k: int) -> float:
    t = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None], k)
        t.append((time.perf_counter() - t0) * 1000)
    return float(np.median(t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--questions", type=Path, required=True, help="an eval data set (SQuAD-style JSON)")
    ap.add_argument("--n-queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=100, help="the recall stage's k (settings.recall_k)")
    ap.add_argument("--nprobe", default="16,64,128")
    ap.add_argument("--hnsw-m", default="16,32")
    ap.add_argument("--ef-search", default="64,128,256")
    ap.add_argument("--max-vectors", type=int, default=0, help="subsample the vectors (0: all)")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    import faiss

    from bench.report import machine, write_section
    from eval.datasets import load_dataset
    from indexes.vectors import IndexParams, VectorIndex
    from mmrag.embedding import get_text_embedder
    from mmrag.settings import Settings

    settings = Settings(data_dir=args.data_dir)
    x = real_vectors(args.data_dir)
    if args.max_vectors and len(x) > args.max_vectors:
        x = x[np.random.default_rng(0).choice(len(x), args.max_vectors, replace=False)]
    n, dim = x.shape
    ds = load_dataset(args.questions)
    qs = [e.question for e in random.Random(7).sample(ds.examples, min(args.n_queries, len(ds.examples)))]
    queries = get_text_embedder(settings.text_model).embed(qs, kind="query").astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    exact = VectorIndex.build(ids, x, dim, IndexParams(flat_max=n))
    truth = exact.search(queries, args.k)[1]
    exact_ms = per_query_ms(exact, queries[:200], args.k)
    print(f"{n} real vectors, {len(qs)} queries; exact search {exact_ms:.2f} ms/query", flush=True)

    rows = []

    def measure(label: str, setting: str, index: VectorIndex, build_s: float, share: str) -> None:
        got = index.search(queries, args.k)[1]
        recall = np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)])
        top10 = np.mean([len(set(g) & set(t[:10])) / 10 for g, t in zip(got, truth)])
        ms = per_query_ms(index, queries[:200], args.k)
        rows.append((label, setting, share, recall, top10, ms, build_s))
        print(label, setting, f"recall@{args.k} {recall:.4f}, exact top-10 found {top10:.4f}, {ms:.2f} ms", flush=True)

    t0 = time.perf_counter()
    ivf = VectorIndex.build(ids, x, dim, IndexParams(flat_max=0, ann="ivf"))
    build_s = time.perf_counter() - t0
    nlist = faiss.extract_index_ivf(ivf._index).nlist
    for nprobe in [int(p) for p in args.nprobe.split(",")]:
        ivf.params = IndexParams(flat_max=0, ann="ivf", nprobe=nprobe)
        measure("IVF", f"nlist {nlist}, nprobe {nprobe}", ivf, build_s, f"{nprobe / nlist:.1%} of lists")
    for m in [int(v) for v in args.hnsw_m.split(",")]:
        t0 = time.perf_counter()
        hnsw = VectorIndex.build(ids, x, dim, IndexParams(flat_max=0, ann="hnsw", hnsw_m=m))
        build_s = time.perf_counter() - t0
        for ef in [int(v) for v in args.ef_search.split(",")]:
            hnsw.params = IndexParams(flat_max=0, ann="hnsw", hnsw_m=m, ef_search=ef)
            measure("HNSW", f"M {m}, efSearch {ef}", hnsw, build_s, "")
    threads = faiss.omp_get_max_threads()
    defaults = IndexParams()
    lines = ["## Exact against approximate vector search (real vectors)", "",
             f"Machine: {machine()}. Command: `python -m bench.vector_index --data-dir DATA_DIR --questions "
             f"{args.questions}` (DATA_DIR: the e5 data dir of the SQuAD, new_wiki and NYT collections; FAISS threads: {threads}).", "",
             f"{n:,} real vectors ({settings.text_model}; every passage and sentence vector of the data dir), "
             f"{len(qs)} questions as queries, k = {args.k} (the recall stage's k). Recall@{args.k}: the share of the exact "
             f"top-{args.k} that the index returns; top-10 found: the share of the exact top-10 among its results. "
             "Latency: median per single query. Build: seconds to build over these vectors. HNSW searches with efSearch at least k, so 64 runs as 100. Shipped: "
             f"exact search up to {defaults.flat_max:,} vectors, then {defaults.ann.upper()} "
             f"(M {defaults.hnsw_m}, efConstruction {defaults.ef_construction}, efSearch {defaults.ef_search}).", "",
             f"| index | setting | scans | recall@{args.k} | exact top-10 found | ms/query | vs exact | build s |",
             "|---|---|---|---|---|---|---|---|",
             f"| exact (flat) | | all | 1.000 | 1.000 | {exact_ms:.2f} | 1x | |"]
    for label, setting, share, recall, top10, ms, build_s in rows:
        lines.append(f"| {label} | {setting} | {share} | {recall:.3f} | {top10:.3f} | {ms:.2f} | {exact_ms / ms:.1f}x faster | {build_s:.1f} |")
    lines += ["", f"Exact search grows with n (~{exact_ms / n * 1e5:.0f} ms per 100k vectors at this dimension here). "
              "IVF splits these vectors poorly: they crowd into a narrow cone (the norm of their mean is "
              f"{np.linalg.norm(x.mean(0)):.2f}; 0 for vectors spread evenly), which coarse clusters cut through. "
              "HNSW walks a neighbour graph instead, and its cost grows with log n."]
    write_section(args.out, "vector-index", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
