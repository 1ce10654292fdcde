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


@dataclass
class Answer:
    text: str
    kind: str  # "generated" | "extractive"
    backend: str
    model: str | None = None
    usage: dict = field(default_factory=dict)
    citation_fixes: list[dict] = field(default_factory=list)  # citations moved or removed after generation


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
    """``cancelled`` is polled while an answer is produced: true once the client has gone away."""

    name: str

    def generate(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Answer: ...

    def stream(self, question: str, sources: list[Source], cancelled: Callable[[], bool] | None = None) -> Iterator[str]: ...
