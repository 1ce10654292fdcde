from __future__ import annotations

from collections.abc import Iterator
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


class GenerationError(RuntimeError):
    """The LLM backend failed; ``status`` is the HTTP status the service should answer with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class Generator(Protocol):
    name: str

    def generate(self, question: str, sources: list[Source]) -> Answer: ...

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]: ...
