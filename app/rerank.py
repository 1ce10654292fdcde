"""The cross-encoder stage over the fused top candidates.

A cross-encoder reads the question and a passage together, which no bi-encoder feature can. The
default is the packaged sentence reranker (``mmrag.reranker``): it reads the question against each
candidate's best sentences (the sentence feature picks them), not the whole passage, as it was
trained on. Any sentence-transformers ``CrossEncoder`` (a hub id with network, or a folder) loads by
the same path and, unless told otherwise, reads whole passages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from app.retrieval import Hit, zscore
from indexes.tokenize import has_cjk
from mmrag import reranker as packaged

log = logging.getLogger(__name__)


def combine(fused: np.ndarray, ce: np.ndarray, weight: float) -> np.ndarray:
    """z(fused) + weight x z(cross-encoder) over the head; a candidate with no text scored (ce not finite)
    sits at the cross-encoder's mean."""
    present = np.isfinite(ce)
    return zscore(fused, np.ones(len(fused), bool)) + weight * zscore(np.where(present, ce, 0.0), present)


class CrossEncoderReranker:
    def __init__(self, model: str, top_n: int = 10, weight: float = 0.43, inputs: str = "auto", sentences_per_unit: int = 2,
                 max_length: int | None = None, cache_dir: Path | str = "data", batch_size: int = 32,
                 runtime: str = "onnx", int8: bool = False, threads: int = 1, length_batches: bool = True,
                 top_sentences: int = 0, top_candidates: int = 3, first_alone: bool = False) -> None:
        path = packaged.resolve(model, Path(cache_dir))
        if Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model must never trigger a hub lookup
        self.name = model
        if max_length is None and model == packaged.BUILTIN:
            max_length = packaged.delta_meta()["max_length"]  # as trained; other models keep their own
        self.model = None
        if runtime == "onnx":
            try:
                self.model = packaged.OnnxCrossEncoder(path, Path(cache_dir), max_length, threads, int8, length_batches)
            except ImportError as exc:  # no onnx package: torch serves it, slower
                log.warning("cross-encoder served by torch: ONNX export unavailable (%s)", exc)
        if self.model is None:
            import torch
            from sentence_transformers import CrossEncoder

            # raw scores: they are z-scored against the fused ones, and a sigmoid would squash the top end
            self.model = CrossEncoder(path, device="cpu", max_length=max_length, activation_fn=torch.nn.Identity())
        self.inputs = inputs if inputs != "auto" else ("sentences" if model == packaged.BUILTIN else "passage")
        # MiniLM's vocabulary is English: on Chinese its scores are noise, and the fused order stands
        self.english_only = model == packaged.BUILTIN
        self.top_n, self.weight, self.per_unit, self.batch_size = top_n, weight, sentences_per_unit, batch_size
        self.top_per_unit, self.top_candidates = max(top_sentences, sentences_per_unit), top_candidates
        # only int8 scores depend on their batch; fp32 and torch would pay the extra run for nothing
        self.first_alone = first_alone and int8 and isinstance(self.model, packaged.OnnxCrossEncoder)
        # torch from many request threads: one at a time is faster on 2 cores; ONNX Runtime sessions run
        # concurrently (each with its own threads), so requests share the cores instead of queueing
        self._lock = threading.Lock() if not isinstance(self.model, packaged.OnnxCrossEncoder) else contextlib.nullcontext()

    def _pairs(self, query: str, head: list[Hit], first: int = 0, last: int | None = None) -> tuple[list[tuple[str, str]], list[int]]:
        """(question, text) pairs: each hit's sentences ``first:last`` (its best ones), or its whole text."""
        last = self.per_unit if last is None else last
        pairs, owner = [], []
        for i, h in enumerate(head):
            if self.inputs == "sentences" and h.sentences:
                texts = h.sentences[first:last]
            else:
                texts = (h.unit.search_text(),) if first == 0 else ()
            for t in texts:
                if t.strip():
                    pairs.append((query, t))
                    owner.append(i)
        return pairs, owner

    def _score(self, pairs: list[tuple[str, str]], owner: list[int], ce: np.ndarray) -> None:
        """Each owner's best pair score into ``ce`` (in place)."""
        if pairs:
            with self._lock:
                scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
            np.maximum.at(ce, np.array(owner), np.asarray(scores, dtype=np.float64))

    def rerank(self, query: str, hits: list[Hit], timings: dict[str, float]) -> list[Hit]:
        """Rescore the first ``top_n`` hits: z(fused) + weight * z(cross-encoder); the rest keep their order.

        A unit read as several sentences scores its best one. With ``top_sentences`` above
        ``sentences_per_unit``, the ``top_candidates`` ranked first are then read on their next best
        sentences too and the head is ranked again. One sentence a candidate misses the close calls at the
        top, where the answer sits in a candidate's second sentence; re-reading the first three finds the
        same first source as two sentences each for all but 1 of 500 SQuAD and 2 of 347 CoQA questions, at
        13 pairs instead of 20 (bench.reranker_passes). The first source's score, which the reader's
        abstention weighs, is then read on two sentences as before.
        """
        if len(hits) < 2:
            return hits
        t0 = time.perf_counter()
        head, tail = hits[: self.top_n], hits[self.top_n:]
        pairs, owner = self._pairs(query, head)
        if self.english_only and (has_cjk(query) or any(has_cjk(text) for _, text in pairs)):
            timings["cross_encoder_ms"] = (time.perf_counter() - t0) * 1000
            return hits
        ce = np.full(len(head), -np.inf)
        self._score(pairs, owner, ce)
        fused = np.array([h.score for h in head])
        if self.top_per_unit > self.per_unit and self.top_candidates:
            lead = [int(i) for i in self._order(fused, ce)[: self.top_candidates]]
            pairs, owner = self._pairs(query, [head[i] for i in lead], self.per_unit, self.top_per_unit)
            self._score(pairs, [lead[o] for o in owner], ce)
        present, combined = np.isfinite(ce), combine(fused, ce, self.weight)
        order = np.argsort(-combined, kind="stable")
        for h, c, p, s in zip(head, ce, present, combined):
            if p:
                h.features["cross_encoder"] = float(c)
            h.score = float(s)
        first = int(order[0])
        if self.first_alone and present[first]:  # the score only: the order stands
            head[first].features["cross_encoder"] = self._score_alone(query, head[first])
        timings["cross_encoder_ms"] = (time.perf_counter() - t0) * 1000
        return [head[i] for i in order] + tail

    def _score_alone(self, query: str, hit: Hit) -> float:
        """A candidate's score on its best ``top_sentences``, read in a batch of their own.

        ONNX Runtime's dynamic int8 sets the activations' scale per batch, so a pair's score moves with
        the pairs batched beside it (median 0.16 logits between the one- and two-pass rerankers for the
        same source). The first source's score is what the reader's abstention bar is calibrated on; read
        alone, it depends on the question and the source only, so a change to how many candidates or passes
        the ranking reads no longer moves the bar. Off by default: it costs ~9 ms a query (2 pairs) and the
        answers at a bar calibrated either way are the same to 0.004 F1 (bench.reader); it is for users
        who change what the ranking reads and want the shipped bar to hold. Ranking the leading candidate on
        this score in the second pass saved 3 ms of that but moved a few close calls away from two sentences
        each, so the order stands on the batched scores."""
        pairs, owner = self._pairs(query, [hit], 0, self.top_per_unit)
        ce = np.full(1, -np.inf)
        self._score(pairs, owner, ce)
        return float(ce[0])

    def _order(self, fused: np.ndarray, ce: np.ndarray) -> np.ndarray:
        return np.argsort(-combine(fused, ce, self.weight), kind="stable")
