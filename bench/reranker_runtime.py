"""The cross-encoder's runtime, chosen by measurement: torch (sentence-transformers) against ONNX
Runtime fp32 and int8, on the same questions through the same retrieval.

Each question runs the default retrieval (fused candidates, then the packaged sentence reranker over
the top 10) once per runtime; MRR@10 and recall@1 at document level, and the cross-encoder stage's
time per query (one client, after a warm-up). Needs collections ingested from the datasets' corpora
(``mmrag eval --write-corpus``, then ``mmrag ingest``).

    python -m bench.reranker_runtime --data-dir D --squad SQUAD.json:squad --coqa COQA.json:coqa --n 500 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from bench.report import machine, write_section

RUNTIMES = [("torch", "torch", False, 1), ("onnx fp32", "onnx", False, 1), ("onnx int8", "onnx", True, 1),
            ("onnx int8, 2 threads", "onnx", True, 2)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--squad", help="SQuAD JSON:collection")
    ap.add_argument("--coqa", help="CoQA JSON:collection (first turns)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    import torch

    from app.rerank import CrossEncoderReranker
    from app.services import Services
    from eval.datasets import load_dataset
    from eval.metrics import doc_ranking, mrr_at, recall_at
    from mmrag.settings import Settings

    torch.set_num_threads(1)  # as `mmrag serve` runs torch
    settings = Settings(data_dir=a.data_dir)
    services = Services(settings)
    retriever = services.pipeline.retriever
    rows = []
    for spec in (a.squad, a.coqa):
        if not spec:
            continue
        path, collection = spec.rsplit(":", 1)
        data = load_dataset(Path(path))
        examples = random.Random(7).sample(data.examples, min(a.n, len(data.examples)))
        cid = services.store.collection_id(collection)
        names = {d.id: d.file_name for d in services.store.documents(cid)}
        for label, runtime, int8, threads in RUNTIMES:
            retriever.reranker = CrossEncoderReranker(settings.cross_encoder, settings.cross_encoder_top_n,
                                                      settings.cross_encoder_weight, cache_dir=settings.model_cache,
                                                      runtime=runtime, int8=int8, threads=threads)
            for ex in examples[:10]:
                retriever.retrieve(ex.question, collection, 10)
            mrr, r1, ms = [], [], []
            for ex in examples:
                t0 = time.perf_counter()
                result = retriever.retrieve(ex.question, collection, 10)
                ms.append(result.timings.get("cross_encoder_ms", (time.perf_counter() - t0) * 1000))
                ranking = doc_ranking([names.get(h.unit.document_id, "?") for h in result.hits])
                mrr.append(mrr_at(ranking, set(ex.relevant_documents), 10))
                r1.append(recall_at(ranking, set(ex.relevant_documents), 1))
            ms.sort()
            row = (data.name, label, statistics.fmean(mrr), statistics.fmean(r1), statistics.median(ms), ms[int(0.95 * len(ms))])
            print(*row, flush=True)
            rows.append(row)
    lines = [f"Machine: {machine()}. Command: `python -m bench.reranker_runtime --n {a.n}` (SQuAD dev and CoQA first turns, "
             "seeded sample). The default retrieval with the packaged sentence reranker over the top 10; one client; "
             "the cross-encoder stage's time.", "",
             "| set | runtime | MRR@10 | recall@1 | cross-encoder p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {label} | {m:.4f} | {r:.3f} | {p50:.1f} | {p95:.1f} |" for s, label, m, r, p50, p95 in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "reranker-runtime", "## The cross-encoder's runtime: torch, ONNX fp32, ONNX int8 (#22)\n\n" + text)


if __name__ == "__main__":
    main()
