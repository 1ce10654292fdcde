"""The default ``/query`` end to end, over HTTP, at 100k units: one client and sixteen.

What a user waits for: retrieval (BM25 + vectors, fused), the cross-encoder over the top
candidates, the reader's answer and the citations, through a real ``mmrag serve`` process. The
collection is SQuAD dev's 2,067 paragraphs as ``mmrag ingest`` stored them (sentence vectors
included), copied from an ingested data dir, padded with generated multi-sentence passages (random
vectors, sentence vectors too) up to ``--units``. Questions: 200 seeded SQuAD dev questions; each
answer is scored (token F1 against SQuAD's answers) and each ranking (MRR@10 of the gold paragraph),
so a faster path that answers worse shows it.

``--baseline SRC`` serves the same data dir from another checkout (``git worktree add /tmp/base
COMMIT``) in the same run, for the side-by-side the issue asks for.

    python -m bench.query_http --source-data /tmp/ev/data --source-collection squad \\
        --squad ../shared/data/squad/squaddev_v1.1.json --workdir /tmp/qbench --baseline /tmp/base \\
        --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.report import machine, write_section

COLLECTION = "bench"
QUESTIONS, CLIENTS = 200, 16


def build(source_data: Path, source_collection: str, data: Path, units: int) -> int:
    """The bench collection (once): the ingested collection copied, then generated passages."""
    from indexes.migrate import copy_collection
    from indexes.records import NewDocument, NewUnit
    from indexes.store import LocalStore
    from ingest.chunking import maxsim_texts
    from mmrag.settings import Settings
    from mmrag.units import Unit

    dst = LocalStore.from_settings(Settings(data_dir=data))
    cid = dst.collection_id(COLLECTION)
    if cid is not None:
        return sum(d.n_units for d in dst.documents(cid))
    src = LocalStore.from_settings(Settings(data_dir=source_data))
    copy_collection(src, dst, source_collection, COLLECTION)
    cid = dst.collection_id(COLLECTION)
    have = sum(d.n_units for d in dst.documents(cid))
    rng, nprng = random.Random(5), np.random.default_rng(2)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(30000)]
    cum = list(np.cumsum([1 / (i + 1) for i in range(len(words))]))  # Zipf-like

    def unit_vecs(k: int) -> np.ndarray:
        v = nprng.standard_normal((k, 384), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def passage(i: int) -> NewUnit:
        text = " ".join(" ".join(rng.choices(words, cum_weights=cum, k=rng.randint(10, 25))).capitalize() + "."
                        for _ in range(rng.randint(2, 6)))
        n = len(maxsim_texts(text))
        return NewUnit(Unit("text", text, position=i), unit_vecs(1)[0], None, unit_vecs(n) if n > 1 else None)

    per_doc, missing = 50, max(0, units - have)
    dst.bulk_load(NewDocument(cid, f"gen{d}", f"gen{d}.txt", f"h{d}", "text", None, 0,
                              [passage(i) for i in range(d, min(d + per_doc, missing))])
                  for d in range(0, missing, per_doc))
    dst.flush(cid)
    return have + missing


def serve(src: Path, data: Path, port: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=src, env={**os.environ, "PYTHONPATH": str(src), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server in {src} exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("server not ready in 10 minutes")


def run(port: int, questions: list[dict], clients: int, repeat: int = 1) -> dict:
    import httpx

    local = threading.local()
    lat, out = [], []

    def one(q: dict) -> dict:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        t0 = time.perf_counter()
        r = local.client.post("/query", json={"query": q["question"], "collection": COLLECTION, "top_k": 5})
        lat.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        return r.json()

    work = questions * repeat
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        out = list(pool.map(one, work))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"p50": statistics.median(lat), "p95": lat[int(0.95 * len(lat))], "qps": len(work) / wall, "out": out[: len(questions)]}


def quality(questions: list[dict], out: list[dict]) -> dict:
    from eval.metrics import token_f1

    rr, f1 = [], []
    for q, o in zip(questions, out):
        files = [c["file_name"] for c in o["citations"]]
        rr.append(next((1 / (i + 1) for i, f in enumerate(files) if f == q["file"]), 0.0))
        text = (o.get("answer") or {}).get("text", "")
        f1.append(0.0 if (o.get("answer") or {}).get("kind") == "no_answer" else token_f1(text.split(" [")[0], q["answers"]))
    stages = {}
    for k in out[0]["timings_ms"]:
        stages[k] = statistics.median(o["timings_ms"].get(k, 0.0) for o in out)
    return {"mrr": statistics.fmean(rr), "f1": statistics.fmean(f1), "stages": stages}


def squad_questions(path: Path, corpus_names: dict[str, str]) -> list[dict]:
    data = json.loads(path.read_text())
    qs = []
    for art in data["data"]:
        for para in art["paragraphs"]:
            name = corpus_names.get(para["context"].strip())
            for qa in para["qas"]:
                if name:
                    qs.append({"question": qa["question"], "answers": [a["text"] for a in qa["answers"]], "file": name})
    return random.Random(13).sample(qs, QUESTIONS)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--source-data", type=Path, required=True, help="a data dir holding the ingested SQuAD corpus")
    ap.add_argument("--source-collection", default="squad")
    ap.add_argument("--corpus", type=Path, required=True, help="the folder `mmrag eval --write-corpus` wrote (file -> paragraph)")
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="another checkout to serve the same data dir, as the baseline")
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    data = a.workdir / "data"
    t0 = time.perf_counter()
    n = build(a.source_data, a.source_collection, data, a.units)
    print(f"collection: {n} units ({time.perf_counter() - t0:.0f} s)", flush=True)
    names = {p.read_text().strip(): p.name for p in a.corpus.iterdir() if p.is_file()}
    questions = squad_questions(a.squad, names)
    here = Path(__file__).resolve().parents[1]
    systems = ([("baseline", a.baseline)] if a.baseline else []) + [("this commit", here)]
    rows = []
    for label, src in systems:
        proc = serve(src, data, a.port, {})
        try:
            run(a.port, questions[:20], 1)  # warm-up: page cache, lazy sessions
            one = run(a.port, questions, 1)
            many = run(a.port, questions, CLIENTS)
        finally:
            proc.terminate()
            proc.wait(30)
        q = quality(questions, one["out"])
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=src, capture_output=True, text=True).stdout.strip()
        rows.append((label, commit, one, many, q))
        print(label, commit, f"p50 {one['p50']:.1f} p95 {one['p95']:.1f} qps1 {one['qps']:.2f} qps16 {many['qps']:.2f} "
              f"mrr {q['mrr']:.4f} f1 {q['f1']:.3f}", json.dumps({k: round(v, 1) for k, v in q["stages"].items()}), flush=True)
    lines = [f"Machine: {machine()}. Command: `python -m bench.query_http --units {a.units} --baseline BASE_CHECKOUT` "
             f"(SQuAD dev's ingested paragraphs padded with generated passages to {n:,} units; {QUESTIONS} seeded SQuAD "
             f"questions; `mmrag serve` with its defaults; POST /query top_k 5 with the answer; one client, then {CLIENTS} "
             "clients sending the same questions).", "",
             "| code | commit | p50 ms | p95 ms | q/s, 1 client | q/s, 16 clients | 16 / 1 | MRR@10 | answer F1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, commit, one, many, q in rows:
        lines.append(f"| {label} | {commit} | {one['p50']:.1f} | {one['p95']:.1f} | {one['qps']:.2f} | {many['qps']:.2f} | "
                     f"{many['qps'] / one['qps']:.2f}x | {q['mrr']:.4f} | {q['f1']:.3f} |")
    stage_names = sorted({k for *_, q in rows for k in q["stages"]})
    lines += ["", "Server-side stage medians (ms, one client; `timings_ms` of each response):", "",
              "| code | " + " | ".join(stage_names) + " |", "|---|" + "---|" * len(stage_names)]
    for label, _, _, _, q in rows:
        lines.append(f"| {label} | " + " | ".join(f"{q['stages'].get(k, 0):.1f}" for k in stage_names) + " |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "query-http", "## The default /query over HTTP at 100k units (#22)\n\n" + text)


if __name__ == "__main__":
    main()
