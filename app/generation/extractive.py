"""The embedded default: no LLM, an answer assembled from the best evidence sentences, cited."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from app.generation.base import Answer, Source
from ingest.chunking import count_tokens, split_sentences
from mmrag.embedding import TextEmbedder

MAX_SENTENCES = 2
SOURCES_READ = 3


class ExtractiveGenerator:
    name = "extractive"
    whole = True

    def __init__(self, text: TextEmbedder) -> None:
        self.text = text

    def generate(self, question: str, sources: list[Source], cancelled=None) -> Answer:
        candidates: list[tuple[str, int]] = []
        for src in sources[:SOURCES_READ]:
            if src.unit_type == "table":
                # each row, spelled out with its column names, competes like a sentence
                lines = [ln.split(" | ") for ln in src.text.split("\n") if ln.strip()]
                header = lines[0] if lines else []
                for row in lines[1:]:
                    cells = [f"{h}: {v}" if h else v for h, v in zip(header, row) if v]
                    candidates.append(("; ".join(cells)[:300], src.number))
                continue
            for sentence in split_sentences(src.text):
                if count_tokens(sentence) >= 4:  # words or CJK characters: 12 characters is a whole Chinese sentence
                    candidates.append((sentence, src.number))
        if not candidates:
            return Answer("No evidence was found for this question.", "extractive", self.name)
        vecs = self.text.embed([c[0] for c in candidates], kind="passage")
        q = self.text.embed([question], kind="query")[0]
        sims = vecs @ q
        # prefer earlier (better-ranked) sources a little when sentences tie
        sims -= 0.01 * np.array([c[1] for c in candidates])
        best = sorted(np.argsort(-sims)[:MAX_SENTENCES], key=lambda i: (candidates[i][1], i))
        text = " ".join(f"{candidates[i][0]} [{candidates[i][1]}]" for i in best)
        return Answer(text, "extractive", self.name)

    def stream(self, question: str, sources: list[Source], cancelled=None) -> Iterator[str]:
        yield self.generate(question, sources).text
