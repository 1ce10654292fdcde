from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Source:
    """One numbered piece of evidence handed to the generator."""

    number: int
    text: str
    label: str  # "report.pdf p.3 (table)"
    unit_type: str
    image_path: str | None = None
    # the retriever's absolute features of this hit (cross_encoder, cosine, bm25): how relevant it
    # looked before anything read it, which the reader weighs when deciding to abstain
    features: dict = field(default_factory=dict)
    unit_id: int | None = None  # the stored unit, whose sentence vectors an extractive answer reuses


@dataclass
class Answer:
    text: str
    kind: str  # "generated" | "extractive" | "reader" | "no_answer"
    backend: str
    model: str | None = None
    usage: dict = field(default_factory=dict)
    citation_fixes: list[dict] = field(default_factory=list)  # citations moved or removed after generation
    support: str | None = None  # the reader's: the sentence (or table row) that holds the answer
    confidence: float | None = None  # the reader's: how far the answer clears the abstention bar (below 0: no_answer)
    cell: dict | None = None  # the reader's, for a table: the cell's value, row label and column header

    def to_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "backend": self.backend, "model": self.model,
                "citation_fixes": self.citation_fixes, "support": self.support, "confidence": self.confidence,
                "cell": self.cell}


class GenerationError(RuntimeError):
    """The LLM backend failed; ``status`` is the HTTP status the service should answer with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class GenerationCancelled(GenerationError):
    """The caller went away; the work stopped (nothing to answer)."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message, 499)


class Generator(Protocol):
    """``cancelled`` is polled while an answer is produced: true once the client has gone away.

    ``whole``: the backend answers at once (reader, extractive), so a stream sends its answer as one
    token and the done event carries the whole ``Answer`` (kind, support, cell)."""

    name: str
    whole: bool

    def generate(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Answer: ...

    def stream(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Iterator[str]: ...
