"""Transformer models served by ONNX Runtime: exported once into the model cache, optionally
quantised to int8, then run without torch. Used by the reader and the cross-encoder, whose
measurements (docs/benchmarks.md, "reader-runtime" and "reranker-runtime") chose the runtime.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def build_folder(folder: Path, write: Callable[[Path], None]) -> Path:
    """``folder``, built once by ``write(tmp)`` into a folder beside it and renamed, so a half-written
    one is never used (and two processes building it at once both end up with a whole one)."""
    if (folder / "model.onnx").exists():
        return folder
    log.info("exporting %s to ONNX (once)", folder.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        write(tmp)
        tmp.rename(folder)
    except OSError:
        if not (folder / "model.onnx").exists():  # another process did not finish it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def export_module(model, args: tuple, path: Path, input_names: list[str], output_names: list[str], axes: dict) -> None:
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on HF's attention code, not actionable here
        torch.onnx.export(model, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def export(folder: Path, build: Callable[[], object], tokenizer_source: str, output_names: list[str]) -> Path:
    """``folder`` holding ``model.onnx`` (a transformers model reading text pairs) and its tokenizer,
    built once from ``build()``. ImportError where the ``onnx`` package is missing (the caller falls
    back to torch)."""
    if (folder / "model.onnx").exists():
        return folder
    import onnx  # noqa: F401  (torch.onnx.export needs it: fail before building anything)
    from transformers import AutoTokenizer

    def write(tmp: Path) -> None:
        model = build()
        tok = AutoTokenizer.from_pretrained(tokenizer_source)
        tok.save_pretrained(tmp)
        enc = tok(["a question"], ["a passage to read"], return_tensors="pt")
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        export_module(model, tuple(enc[k] for k in names), tmp / "model.onnx", names, output_names,
                      {k: {0: "batch", 1: "tokens"} for k in names})

    return build_folder(folder, write)


def quantized(folder: Path, fp32: tuple[str, ...] = ()) -> Path:
    """The int8 model beside the fp32 one, built once: ONNX Runtime's dynamic quantisation with a
    scale per output channel. ``fp32``: MatMul nodes whose names end so stay fp32 (one file per choice)."""
    path = folder / ("model-int8.onnx" if not fp32 else f"model-int8-fp32-{'-'.join(n.strip('/').replace('/', '_') for n in fp32)}.onnx")
    if path.exists():
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = []
    if fp32:
        import onnx

        keep = [n.name for n in onnx.load(str(folder / "model.onnx")).graph.node if n.op_type == "MatMul" and n.name.endswith(fp32)]
    tmp = folder / f".model-int8-{os.getpid()}.onnx"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a pre-processing hint on the root logger, not actionable here
    try:
        quantize_dynamic(str(folder / "model.onnx"), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=keep)
        os.replace(tmp, path)
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)
    return path


def _ort_session(model: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = max(1, threads), 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


class _Load:
    """How many requests are being computed in this process (``busy()`` around each): what decides,
    with a session's own runs in flight, whether a run may take several cores."""

    def __init__(self) -> None:
        self.requests = 0
        self.shared = 0  # work elsewhere (a parse worker) is using the cores too
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def _counted(self, attr: str):
        with self.lock:
            setattr(self, attr, getattr(self, attr) + 1)
        try:
            yield
        finally:
            with self.lock:
                setattr(self, attr, getattr(self, attr) - 1)

    def busy(self):
        return self._counted("requests")

    def sharing(self):
        return self._counted("shared")


LOAD = _Load()
busy = LOAD.busy  # the query pipeline wraps each request in it
sharing = LOAD.sharing  # runs meanwhile take one core: another process (a parse worker) needs the other


class Session:
    """An ONNX Runtime session that uses ``threads`` cores when its request is the only one being
    computed, and one core otherwise.

    Intra-op threads make one request on an idle machine faster, but under concurrent requests they
    cost more CPU than they save (each parallel section's split and sync, and the pool's threads
    spinning for work between runs), and the cores are busy with other requests anyway. So a second
    session of the same model with one thread serves runs while other requests are in flight
    (bench.query_http: 16 clients got 10.0 q/s with every run on two threads, 10.5 with pools that
    sleep instead of spinning, which cost one client ~10 ms; this keeps one client's speed)."""

    def __init__(self, model: Path, threads: int) -> None:
        self._wide = _ort_session(model, threads)
        self._narrow = _ort_session(model, 1) if threads > 1 else None
        self._runs = 0

    def get_inputs(self):
        return self._wide.get_inputs()

    def run(self, outputs: list[str], feed: dict):
        with LOAD.lock:
            alone = self._runs == 0 and LOAD.requests <= 1 and not LOAD.shared
            self._runs += 1
        try:
            return (self._wide if alone or self._narrow is None else self._narrow).run(outputs, feed)
        finally:
            with LOAD.lock:
                self._runs -= 1


def session(folder: Path, int8: bool, threads: int, fp32: tuple[str, ...] = ()) -> Session:
    return Session(quantized(folder, fp32) if int8 else folder / "model.onnx", threads)


def length_batches(lengths: list[int], max_batch: int = 32, overhead: int = 64, max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, so little of each batch is padding.

    A batch costs about (rows x its longest row) tokens plus a fixed ``overhead`` per run (in token
    equivalents); the split of the length-sorted rows that minimises the total is found exactly
    (dynamic programming over the sorted order, O(n x max_batch)). Padding every pair to the longest
    one, as one batch does, had cost the cross-encoder a third of its time on question-sentence
    pairs, whose lengths vary 3x. ``max_tokens`` caps a batch's padded size (memory)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    sl = [lengths[i] for i in order]
    best = [0.0] + [float("inf")] * len(sl)  # best[j]: cost of the first j sorted rows
    cut = [0] * (len(sl) + 1)
    for j in range(1, len(sl) + 1):
        for i in range(j - 1, max(0, j - max_batch) - 1, -1):
            if max_tokens and i < j - 1 and (j - i) * sl[j - 1] > max_tokens:
                break
            c = best[i] + (j - i) * sl[j - 1] + overhead
            if c < best[j]:
                best[j], cut[j] = c, i
    batches, j = [], len(sl)
    while j:
        batches.append(order[cut[j]:j])
        j = cut[j]
    return batches[::-1]


def pad(rows: list[dict[str, list[int]]], pad_id: int) -> dict[str, np.ndarray]:
    """Tokenised rows (no padding) as one right-padded int64 batch."""
    width = max(len(r["input_ids"]) for r in rows)
    out = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        out[key] = np.array([r[key] + [fill] * (width - len(r[key])) for r in rows], dtype=np.int64)
    return out


def feed(sess, enc: dict) -> dict[str, np.ndarray]:
    names = {i.name for i in sess.get_inputs()}
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in names}
