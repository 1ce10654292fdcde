"""The reader's runtime, chosen by measurement: torch against ONNX Runtime fp32 and int8, same questions.

Each SQuAD dev question is read against its own passage (the same seeded 300 as
``bench.train_reader``'s score), one question at a time with one thread, as ``/query`` reads it.
int8 is ONNX Runtime's dynamic quantisation with per-channel weights; ``int8-keep-head`` leaves the
answer head and the last encoder layer in fp32, where the start/end scores are most sensitive.

    python -m bench.reader_runtime --squad ../shared/data/squad/squaddev_v1.1.json --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section


def quantize(src: Path, dst: Path, keep: tuple[str, ...]) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    excluded = [n.name for n in graph.node if any(k in n.name for k in keep)]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=excluded)
    return dst


def score(reader, held: list[dict]) -> dict:
    from eval.metrics import exact_match, token_f1

    em = f1 = 0.0
    ms = []
    for ex in held:
        t0 = time.perf_counter()
        span = reader.read(ex["question"], [ex["context"]])[0]
        ms.append((time.perf_counter() - t0) * 1000)
        pred = ex["context"][span.start:span.end] if span else ""
        refs = [a["text"] for a in ex["answers"]]
        em, f1 = em + exact_match(pred, refs), f1 + token_f1(pred, refs)
    ms.sort()
    return {"em": em / len(held), "f1": f1 / len(held), "p50": statistics.median(ms), "p95": ms[int(0.95 * len(ms))]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--squad", type=Path, required=True, help="SQuAD dev JSON")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", type=Path, help="markdown file to write the section into")
    a = ap.parse_args(argv)

    import onnxruntime as ort
    import torch

    from bench.train_reader import squad_examples
    from mmrag.reader import SpanReader, build_model, export

    torch.set_num_threads(1)
    held = random.Random(13).sample(squad_examples(a.squad), a.n)
    cache = Path(tempfile.mkdtemp(prefix="reader-runtime-"))
    reader = SpanReader(cache_dir=cache, threads=1)
    fp32 = export(reader.name, cache) / "model.onnx"
    rows = {"ONNX Runtime fp32": score(reader, held)}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    for label, keep in (("ONNX Runtime int8 (per channel)", ()),
                        ("ONNX Runtime int8, head and last layer fp32", ("qa_outputs", "layer.5/"))):
        path = quantize(fp32, cache / f"int8-{len(keep)}.onnx", keep)
        reader._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        rows[label] = score(reader, held)
    reader._session, reader._torch = None, build_model()
    rows["torch fp32"] = score(reader, held)
    base = rows["ONNX Runtime fp32"]
    lines = [f"Command: `python -m bench.reader_runtime --squad SQUAD_DEV --n {a.n}` ({machine()}). "
             f"{a.n} SQuAD dev questions (seed 13), each read against its own passage, one at a time, 1 thread.", "",
             "| runtime | EM | F1 | p50 ms | p95 ms | p50 vs ONNX fp32 |", "|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['em']:.3f} | {r['f1']:.3f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p50'] / base['p50']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        write_section(a.out, "reader-runtime", "## The reader's runtime: torch, ONNX fp32, ONNX int8 (#20, #22)\n\n" + text)


if __name__ == "__main__":
    main()
