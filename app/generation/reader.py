"""The embedded default: the answer span read from the best sources, its sentence and its citation.

``Twice a year [1]``, with "The panels should be cleaned twice a year." as its support. A table is
read row by row, each cell spelled out with its column header, and answered with the cell and its
row and column, the span kept inside one cell. When no source holds an answer (the reader's margin
over its own "no answer" score, weighed with the reranker's score of the top source, does not clear
the calibrated bar: ``ReaderGenerator.confidence``) the answer says so, as ``kind: no_answer``, and
still cites the closest evidence. Questions or sources in scripts written without spaces (Chinese,
Japanese) go to the multilingual reader (``mmrag.reader_e5``) where one is set, else to the
extractive sentences: the English reader's vocabulary cannot read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.generation.base import Answer, Generator, Source
from indexes.tokenize import has_wordless_script
from ingest.chunking import sentence_bounds
from mmrag.reader import SpanReader
from mmrag.reader_e5 import BUILTIN as MULTILINGUAL

NO_ANSWER = "The documents do not say."


@dataclass
class Cell:
    start: int  # character range of the value in the reading text
    end: int
    value: str
    row: str  # the row's first cell (its label)
    column: str  # the column header


def reading_text(src: Source) -> tuple[str, list[Cell]]:
    """What the reader reads of a source; for a table, one line per row, each cell with its header."""
    if src.unit_type != "table":
        return src.text, []
    rows = [ln.split(" | ") for ln in src.text.split("\n") if ln.strip()]
    if len(rows) < 2:
        return src.text, []
    header, out, cells = rows[0], "", []
    for row in rows[1:]:
        parts = []
        for k, value in enumerate(row):
            value = value.strip()
            if not value:
                continue
            column = header[k].strip() if k < len(header) else ""
            prefix = f"{column}: " if column else ""
            start = len(out) + sum(len(p) + 2 for p in parts) + len(prefix)
            parts.append(prefix + value)
            cells.append(Cell(start, start + len(value), value, row[0].strip(), column))
        out += "; ".join(parts) + ".\n"
    return out, cells


def support_sentence(text: str, start: int, end: int, table: bool = False) -> str:
    """The sentence (or table row) that holds characters start..end."""
    bounds = sentence_bounds(text) if not table else [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n"), len(text)]
    for a, b in zip(bounds, bounds[1:]):
        if a <= start < b:
            return text[a:max(b, end)].strip()
    return text[start:end]


class ReaderGenerator:
    name = "reader"
    whole = True

    def __init__(self, reader: SpanReader, fallback: Generator, threshold: float, sources_read: int = 1,
                 rank_penalty: float = 0.0, relevance_weight: float = 0.0, relevance_center: float = 0.0,
                 threshold_alone: float | None = None) -> None:
        self.reader, self.fallback = reader, fallback
        self.threshold, self.sources_read, self.rank_penalty = threshold, sources_read, rank_penalty
        self.relevance_weight, self.relevance_center = relevance_weight, relevance_center
        self.threshold_alone = threshold if threshold_alone is None else threshold_alone
        # loads the reader for Chinese and Japanese (on first use) where the main one is English
        self.multilingual: Callable[[], SpanReader] | None = None
        # questions in those scripts: sources read, rank penalty, and the bar on the margin (they have no
        # reranker score to weigh: the English cross-encoder leaves them alone)
        self.wordless: tuple[int, float, float] = (sources_read, rank_penalty, self.threshold_alone)

    def confidence(self, margin: float, top: Source) -> float:
        """How far the answer clears the abstention bar (below 0: no answer).

        The reader's margin, plus how relevant the retriever found the top source (the sentence
        reranker's raw score): a question about another corpus can still find a plausible span, but
        the reranker rarely rates its best passage highly. Without that score (reranker off, or
        Chinese text among the candidates) the margin alone decides, against its own calibrated bar."""
        relevance = top.features.get("cross_encoder")
        if relevance is None:
            return margin - self.threshold_alone
        return margin + self.relevance_weight * (relevance - self.relevance_center) - self.threshold

    def generate(self, question: str, sources: list[Source], cancelled=None) -> Answer:
        wordless = has_wordless_script(question)
        sources_read, rank_penalty, wordless_bar = self.wordless if wordless else (self.sources_read, self.rank_penalty, 0.0)
        readable = [s for s in sources[:sources_read] if s.text.strip()]
        if not readable:
            return self.fallback.generate(question, sources, cancelled)
        texts = [reading_text(s) for s in readable]
        reader = self.reader
        # by the question's script, or the top source's (an English question over Chinese documents)
        if self.reader.name != MULTILINGUAL and (wordless or has_wordless_script(texts[0][0])):
            if self.multilingual is None:
                return self.fallback.generate(question, sources, cancelled)
            reader = self.multilingual()
        # a table's answer is one cell: spans are kept inside cells
        spans = reader.read(question, [t for t, _ in texts],
                            [[(c.start, c.end) for c in cells] if cells else None for _, cells in texts])
        found = [s for s in spans if s is not None]
        if not found:
            return self.fallback.generate(question, sources, cancelled)
        # a better-ranked source wins a close call: the retriever's order carries evidence too
        best = max(found, key=lambda s: s.score - rank_penalty * s.passage)
        # "no answer" is judged against the source most likely to hold one (its lowest null score)
        null = min(s.null for s in found)
        if wordless:  # the multilingual reader on Chinese or Japanese: its own bar on the margin
            sure = best.score - null - wordless_bar
        else:
            sure = self.confidence(best.score - null, readable[0])
        src = readable[best.passage]
        text, cells = texts[best.passage]
        support = support_sentence(text, best.start, best.end, table=bool(cells))
        found_at = {"support": support, "confidence": round(sure, 3), "model": reader.name}
        if sure < 0:
            return Answer(f"{NO_ANSWER} The closest evidence: {support} [{src.number}]", "no_answer", self.name,
                          **found_at)
        span = text[best.start:best.end].strip()
        cell = next((c for c in cells if c.start <= best.start < c.end + 1), None)
        if cell is not None:  # the whole cell, where it sits in the table
            where = ", ".join(x for x in (cell.row if cell.row != cell.value else "", cell.column) if x)
            span = f"{cell.value} ({where})" if where else cell.value
            found_at["cell"] = {"value": cell.value, "row": cell.row, "column": cell.column, "source": src.number}
        return Answer(f"{span} [{src.number}]", "reader", self.name, **found_at)

    def stream(self, question: str, sources: list[Source], cancelled=None) -> Iterator[str]:
        yield self.generate(question, sources, cancelled).text
