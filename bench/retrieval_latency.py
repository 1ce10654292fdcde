"""Retrieval latency, throughput and memory at 10k/100k/1M units, side by side with LangChain's
``EnsembleRetriever`` over ``BM25Retriever`` + FAISS (what a user would otherwise pick).

    pip install -e .[bench]
    python -m bench.retrieval_latency [--sizes 10000,100000,1000000] [--squad ../shared/data/squad/squaddev_v1.1.json]

The corpus: SQuAD's 2,067 real paragraphs (embedded for real with the query model) padded with
generated paragraphs (random unit vectors) up to each size, so that both systems rank real
questions against real passages among many distractors; MRR@10 is measured on 200 SQuAD questions.
Queries are embedded with the same model for both: the default e5 on ONNX Runtime (``--text-model``
picks another; runs before 2026-12-06 used MiniLM through torch). Each system runs in its own process per size,
so memory is its own; 16 clients are 16 threads in that process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

VOCAB_SEED = 5
TEXT_MODEL = os.environ.get("MMRAG_BENCH_TEXT_MODEL", "packaged:multilingual-e5-small")


def query_model():
    """The text model both systems embed queries (and SQuAD's paragraphs) with, as mmrag serves it."""
    from mmrag.embedding import get_text_embedder
    from mmrag.embedding.factory import text_options
    from mmrag.settings import Settings

    return get_text_embedder(TEXT_MODEL, 64, **text_options(Settings()))
N_QUERIES = 200


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def corpus(n: int, squad: Path | None, cache: Path) -> tuple[list[str], np.ndarray, list[tuple[str, int]]]:
    """Texts, vectors, and (question, index of its paragraph) pairs."""
    texts, vecs, questions = [], [], []
    if squad and squad.exists():
        data = json.loads(squad.read_text())
        qs = []
        for art in data["data"]:
            for para in art["paragraphs"]:
                for qa in para["qas"]:
                    qs.append((qa["question"], len(texts)))
                texts.append(para["context"])
        questions = random.Random(13).sample(qs, N_QUERIES)
        vec_file = cache / f"squad_vecs-{TEXT_MODEL.replace(':', '_').replace('/', '_')}.npy"
        if vec_file.exists():
            real = np.load(vec_file)
        else:

            real = query_model().embed(texts)
            np.save(vec_file, real)
        vecs.append(real[: min(n, len(texts))])
        texts = texts[:n]
    rng = random.Random(VOCAB_SEED)
    words = [f"{''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(3, 9)))}" for _ in range(30000)]
    weights = [1 / (i + 1) for i in range(len(words))]  # Zipf-like
    filler = n - len(texts)
    if filler > 0:
        gen = random.Random(1)
        cum = list(np.cumsum(weights))
        texts += [" ".join(gen.choices(words, cum_weights=cum, k=gen.randint(40, 90))) for _ in range(filler)]
        nprng = np.random.default_rng(2)
        v = nprng.standard_normal((filler, 384), dtype=np.float32)
        vecs.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    if not questions:
        gen = random.Random(3)
        questions = [(" ".join(texts[i].split()[5:11]), i) for i in gen.sample(range(len(texts)), N_QUERIES)]
    return texts, np.vstack(vecs).astype(np.float32), questions


def timed_queries(fn, questions, clients: int) -> dict:
    lat = []

    def one(q):
        t0 = time.perf_counter()
        out = fn(q[0])
        lat.append((time.perf_counter() - t0) * 1000)
        return out

    t0 = time.perf_counter()
    if clients == 1:
        results = [one(q) for q in questions]
    else:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, questions))
    wall = time.perf_counter() - t0
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99), "qps": len(questions) / wall, "results": results}


def mrr(results: list[list[int]], questions) -> float:
    rr = []
    for ranked, (_, gold) in zip(results, questions):
        rr.append(next((1 / (i + 1) for i, d in enumerate(ranked[:10]) if d == gold), 0.0))
    return float(np.mean(rr))


# -- the two systems, each in its own process ------------------------------------------------
def run_ours(texts, vecs, questions, workdir: Path) -> dict:
    from app.retrieval import HybridRetriever
    from indexes.records import NewDocument, NewUnit
    from indexes.store import LocalStore
    from mmrag.settings import Settings
    from mmrag.units import Unit

    text = query_model()
    text.embed(["warm up"])
    base = rss_mb()
    t0 = time.perf_counter()
    settings = Settings(data_dir=workdir, image_model="none", recall_k=100)
    store = LocalStore.from_settings(settings)
    cid = store.collection_id("bench", create=True)
    per_doc = 100
    # units get ids 1..n in order (a fresh store): the questions' gold passages are found by id
    store.bulk_load(NewDocument(cid, f"doc{d}", f"doc{d}", "", "text", None, 0,
                                [NewUnit(Unit("text", texts[i], position=i - d), vecs[i])
                                 for i in range(d, min(d + per_doc, len(texts)))])
                    for d in range(0, len(texts), per_doc))
    store.flush(cid)  # builds and snapshots FAISS (HNSW past flat_max) and BM25
    build = time.perf_counter() - t0
    store = LocalStore.from_settings(settings)  # reload from disk, as a restarted server would
    t1 = time.perf_counter()
    store.indexes(cid)
    load = time.perf_counter() - t1
    retriever = HybridRetriever(store, settings, text, None)

    stages: list[dict[str, float]] = []

    def search(q):
        got = retriever.retrieve(q, "bench", 10)
        stages.append(got.timings)
        return [h.unit.id - 1 for h in got.hits]

    one = timed_queries(search, questions, 1)
    # where one client's time goes, as medians per stage (embedding the query is inside dense_ms)
    stage_ms = {k: float(np.median([t.get(k, 0.0) for t in stages])) for k in stages[0]} if stages else {}
    many = timed_queries(search, questions, 16)
    return {"build_s": build, "load_s": load, "rss_mb": rss_mb() - base, "mrr": mrr(one["results"], questions),
            "stages_ms": stage_ms,
            **{f"c1_{k}": v for k, v in one.items() if k != "results"}, **{f"c16_{k}": v for k, v in many.items() if k != "results"}}


def run_langchain(texts, vecs, questions, workdir: Path, max_queries: int) -> dict:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings


    model = query_model()
    model.embed(["warm up"])

    class MiniLM(Embeddings):  # whichever model mmrag's side uses
        def embed_documents(self, docs):
            return model.embed(docs).tolist()

        def embed_query(self, q):
            return model.embed([q], kind="query")[0].tolist()

    base = rss_mb()
    t0 = time.perf_counter()
    metas = [{"i": i} for i in range(len(texts))]
    bm25 = BM25Retriever.from_texts(texts, metadatas=metas, k=10)
    faiss_store = FAISS.from_embeddings(list(zip(texts, vecs)), MiniLM(), metadatas=metas)  # numpy rows: 1M Python-float lists need ~10 GB
    ensemble = EnsembleRetriever(retrievers=[bm25, faiss_store.as_retriever(search_kwargs={"k": 10})], weights=[0.5, 0.5])
    build = time.perf_counter() - t0
    qs = questions[:max_queries]

    def search(q):
        return [d.metadata["i"] for d in ensemble.invoke(q)]

    one = timed_queries(search, qs, 1)
    many = timed_queries(search, qs, 16)
    return {"build_s": build, "load_s": None, "rss_mb": rss_mb() - base, "mrr": mrr(one["results"], qs), "queries": len(qs),
            **{f"c1_{k}": v for k, v in one.items() if k != "results"}, **{f"c16_{k}": v for k, v in many.items() if k != "results"}}


def worker(args) -> None:
    cache = Path(args.cache)
    texts, vecs, questions = corpus(args.n, Path(args.squad) if args.squad else None, cache)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if args.system == "ours":
            out = run_ours(texts, vecs, questions, Path(tmp))
        else:
            out = run_langchain(texts, vecs, questions, Path(tmp), args.max_queries)
    model = query_model()
    out["threads"] = f"{TEXT_MODEL.split(':')[-1]}, {getattr(model, 'runtime', 'torch')}"  # what embedded the queries
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--squad", default="../shared/data/squad/squaddev_v1.1.json")
    ap.add_argument("--langchain-max", default="10000:200,100000:200,1000000:10",
                    help="queries LangChain runs per size (it scans every document per query)")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs section from the saved results, run nothing")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--system", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cache", help="a folder for the embedded SQuAD paragraphs, kept between runs (default: a new temporary one)")
    ap.add_argument("--max-queries", type=int, default=N_QUERIES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    from bench.report import machine, write_section

    # --cache keeps the embedded SQuAD paragraphs between runs (a minute or more to embed)
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="mmrag-latency-"))
    cache.mkdir(parents=True, exist_ok=True)
    # results accumulate across runs, so a rerun of one size or system updates only its rows
    store_file = Path("docs/bench-data/retrieval_latency.json")
    saved = json.loads(store_file.read_text()) if store_file.exists() else {}
    lc_max = dict(tuple(int(x) for x in s.split(":")) for s in args.langchain_max.split(","))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    for n in [] if args.report_only else [int(s) for s in args.sizes.split(",")]:
        res = {}
        for system in ("ours", "langchain"):
            if system == "langchain" and lc_max.get(n, 0) == 0:
                continue
            cmd = [sys.executable, "-m", "bench.retrieval_latency", "--worker", "--system", system, "--n", str(n),
                   "--cache", str(cache), "--squad", args.squad, "--max-queries", str(lc_max.get(n, N_QUERIES))]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{system} at {n} failed")
            res[system] = json.loads(line[7:])
            saved[f"{n}:{system}"] = res[system]
            store_file.parent.mkdir(parents=True, exist_ok=True)
            store_file.write_text(json.dumps(saved, indent=1))
            print(n, system, res[system], flush=True)
    rows = []
    for n in sorted({int(k.split(":")[0]) for k in saved}):
        rows.append((n, {sys_: saved[f"{n}:{sys_}"] for sys_ in ("ours", "langchain") if f"{n}:{sys_}" in saved}))
    lines = ["## Retrieval latency and memory", "",
             f"Machine: {machine()}. Command: `python -m bench.retrieval_latency --sizes {','.join(str(n) for n, _ in rows)}` "
             "(results accumulate in docs/bench-data/retrieval_latency.json, so a rerun of one size or system updates its rows).", "",
             "Per query: embed the question, recall 100 candidates from BM25 and from FAISS, compute every feature for every "
             "candidate, fuse (mmrag); LangChain: `EnsembleRetriever` (weights 0.5/0.5) over `BM25Retriever` and a FAISS "
             "vector store, k=10 each, the same query model for both (the column; `MMRAG_BENCH_TEXT_MODEL` picks it). Corpus: SQuAD's 2,067 real paragraphs padded with generated ones; "
             "MRR@10 on sampled SQuAD questions (mmrag with its default fusion weights, which were tuned for the e5 default model: "
             "rows measured with MiniLM are a little below what MiniLM's own weights give). Memory: resident-set growth of the process for the indexes (mmrag: loaded from disk).",
             "", "| units | system | query model | p50 ms | p95 ms | p99 ms | q/s (1 client) | q/s (16 clients) | MRR@10 | memory MB | build s | speed-up (p50) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, res in rows:
        ours = res.get("ours")
        for system, r in res.items():
            label = "mmrag" if system == "ours" else f"LangChain ({r.get('queries', N_QUERIES)} queries)"
            speed = "" if system == "ours" or not ours else f"mmrag {r['c1_p50'] / ours['c1_p50']:.1f}x faster"
            model = r.get("threads", 2)
            model = f"all-MiniLM-L6-v2, torch {model} thread(s)" if isinstance(model, int) else model
            lines.append(f"| {n:,} | {label} | {model} | {r['c1_p50']:.1f} | {r['c1_p95']:.1f} | {r['c1_p99']:.1f} | {r['c1_qps']:.1f} | "
                         f"{r['c16_qps']:.1f} | {r['mrr']:.3f} | {r['rss_mb']:.0f} | {r['build_s']:.0f} | {speed} |")
    staged = [(n, res["ours"]["stages_ms"]) for n, res in rows if "stages_ms" in res.get("ours", {})]
    if staged:
        lines += ["", "Where mmrag's time goes (medians of the one-client run, ms): " + "; ".join(
            f"{n:,}: embedding the question + vector search {st['dense_ms']:.1f}, BM25 {st['bm25_ms']:.1f}, "
            f"features {st['features_ms']:.1f}, fusion {st.get('rerank_ms', 0.0):.1f}" for n, st in staged) + "."]
    write_section(args.out, "retrieval-latency", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
