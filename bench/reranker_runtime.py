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

# label -> CrossEncoderReranker's arguments; the first rows are the runtimes, the last ones what is read
CONFIGS = {
    "torch": dict(runtime="torch"),
    "onnx fp32, one padded batch": dict(length_batches=False, threads=2),
    "onnx fp32": dict(threads=2),
    "onnx int8, one padded batch": dict(int8=True, length_batches=False, threads=2),
    "onnx int8 (the default)": dict(int8=True, threads=2),
    "onnx int8, top 8": dict(int8=True, threads=2, top_n=8),
    "onnx int8, top 6": dict(int8=True, threads=2, top_n=6),
    "onnx int8, 1 sentence each": dict(int8=True, threads=2, sentences_per_unit=1),
    "onnx int8, 1 sentence each, the first reads 2": dict(int8=True, threads=2, sentences_per_unit=1, top_sentences=2,
                                                          top_candidates=1),
    "onnx int8, 1 sentence each, the first 3 read 2": dict(int8=True, threads=2, sentences_per_unit=1, top_sentences=2,
                                                           top_candidates=3),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--squad", help="SQuAD JSON:collection")
    ap.add_argument("--coqa", help="CoQA JSON:collection (first turns)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--configs", help="semicolon-separated labels to run (default: all)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    configs = {k: v for k, v in CONFIGS.items() if not a.configs or k in a.configs.split(";")}

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
        for label, kwargs in configs.items():
            kwargs = {"top_n": 10, "threads": 1, "sentences_per_unit": 2, **kwargs}  # the rows vary one thing each
            retriever.reranker = CrossEncoderReranker(settings.cross_encoder, weight=settings.cross_encoder_weight,
                                                      cache_dir=settings.model_cache, **kwargs)
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
             "seeded sample). The default retrieval with the packaged sentence reranker over the top 10 (2 sentences each) "
             "unless the row says otherwise; one client; the cross-encoder stage's time. torch runs 1 thread, as "
             "`mmrag serve` ran it; ONNX Runtime 2. Length batches: the pairs sorted by length and split where padding "
             "would cost more than another run (`onnx_models.length_batches`); one padded batch: all pairs padded to "
             "the longest.", "",
             "| set | runtime | MRR@10 | recall@1 | cross-encoder p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {label} | {m:.4f} | {r:.3f} | {p50:.1f} | {p95:.1f} |" for s, label, m, r, p50, p95 in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "reranker-runtime", "## The cross-encoder: runtime, batching, what it reads (#22)\n\n" + text)


if __name__ == "__main__":
    main()
