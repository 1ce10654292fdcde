"""Transformer models served by ONNX Runtime: exported once into the model cache, optionally
quantised to int8, then run without torch. Used by the reader and the cross-encoder, whose
measurements (docs/benchmarks.md, "reader-runtime" and "reranker-runtime") chose the runtime.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def export(folder: Path, build: Callable[[], object], tokenizer_source: str, output_names: list[str]) -> Path:
    """``folder`` holding ``model.onnx`` and its tokenizer, built once from ``build()`` (a torch model);
    written beside and renamed, so a half-written folder is never used. ImportError where the ``onnx``
    package is missing (the caller falls back to torch)."""
    if (folder / "model.onnx").exists():
        return folder
    import onnx  # noqa: F401  (torch.onnx.export needs it: fail before building anything)
    import torch
    from transformers import AutoTokenizer

    log.info("exporting %s to ONNX (once)", folder.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        model = build()
        tok = AutoTokenizer.from_pretrained(tokenizer_source)
        tok.save_pretrained(tmp)
        enc = tok(["a question"], ["a passage to read"], return_tensors="pt")
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        axes = {k: {0: "batch", 1: "tokens"} for k in names}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on HF's attention code, not actionable here
            torch.onnx.export(model, tuple(enc[k] for k in names), str(tmp / "model.onnx"), input_names=names,
                              output_names=output_names, dynamic_axes=axes, opset_version=17, dynamo=False)
        tmp.rename(folder)
    except OSError:
        if not (folder / "model.onnx").exists():  # another process did not finish it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def quantized(folder: Path) -> Path:
    """The int8 model beside the fp32 one, built once: ONNX Runtime's dynamic quantisation with a
    scale per output channel."""
    path = folder / "model-int8.onnx"
    if path.exists():
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = folder / f".model-int8-{os.getpid()}.onnx"
    try:
        quantize_dynamic(str(folder / "model.onnx"), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def session(folder: Path, int8: bool, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = max(1, threads), 1
    model = quantized(folder) if int8 else folder / "model.onnx"
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def feed(sess, enc: dict) -> dict[str, np.ndarray]:
    names = {i.name for i in sess.get_inputs()}
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in names}
