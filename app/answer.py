"""The query pipeline: retrieve, cite, generate. Shared by the REST service and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from app.generation.base import Answer, Generator, Source
from app.retrieval import Filters, Hit, HybridRetriever
from indexes.records import DocumentRecord
from mmrag import onnx_models


@dataclass
class QueryResult:
    query: str
    collection: str
    answer: Answer | None
    citations: list[dict]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "collection": self.collection,
            "answer": None if self.answer is None else self.answer.to_dict(),
            "citations": self.citations,
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
        }


def source_label(hit: Hit, file_name: str) -> str:
    u = hit.unit
    where = f" p.{u.page}" if u.page else ""
    kind = {"table": " (table)", "image": " (figure)"}.get(u.type, "")
    return f"{file_name}{where}{kind}"


def region_urls(u, doc: DocumentRecord | None) -> dict:
    """Where a person can look at the cited region: its page with the box drawn, and the region cut out."""
    shown = doc is not None and (bool(doc.original_path) or doc.format == "image")
    return {"page_url": f"/documents/{u.document_id}/pages/{u.page}.png?highlight={u.id}" if shown and u.page else None,
            "crop_url": f"/units/{u.id}/crop.png" if (shown and u.page and u.bbox) or (u.type == "image" and u.image_path) else None}


class QueryPipeline:
    def __init__(self, retriever: HybridRetriever, generator: Generator) -> None:
        self.retriever, self.generator = retriever, generator

    def retrieve(self, query: str, collection: str, top_k: int, filters: Filters | None,
                 rerank: bool = True) -> tuple[list[Hit], list[Source], list[dict], dict]:
        with onnx_models.busy():  # its models run on one core each while other requests are computed
            result = self.retriever.retrieve(query, collection, top_k, filters, cross_encoder=rerank)
        docs = {}
        citations, sources = [], []
        for n, hit in enumerate(result.hits, start=1):
            u = hit.unit
            if u.document_id not in docs:
                docs[u.document_id] = self.retriever.store.document(u.document_id)
            doc = docs[u.document_id]
            file_name = doc.file_name if doc else None
            label = source_label(hit, file_name or "?")
            text = u.text if u.type != "image" else "\n".join(x for x in (u.caption, u.meta.get("alt"), u.meta.get("ocr_text"), u.meta.get("nearby_text")) if x)
            sources.append(Source(n, text, label, u.type, u.image_path, dict(hit.features), u.id))
            citations.append({
                "number": n, "unit_id": u.id, "document_id": u.document_id, "file_name": file_name,
                "page": u.page, "pages": u.meta.get("pages"), "type": u.type, "heading": u.heading, "bbox": u.bbox,
                "snippet": "\n".join(x for x in (u.caption, u.text) if x)[:300] if u.type == "table" else (u.caption or u.text or "")[:300], "html": u.html if u.type == "table" else None,
                "image_url": f"/units/{u.id}/image" if u.image_path else None,
                "image_file": Path(u.image_path).name if u.image_path else None,
                **region_urls(u, doc),
                "score": round(hit.score, 4), "features": {k: round(v, 4) for k, v in hit.features.items()},
            })
        return result.hits, sources, citations, result.timings

    def run(self, query: str, collection: str, top_k: int = 5, filters: Filters | None = None, generate: bool = True,
            cancelled=None, rerank: bool = True) -> QueryResult:
        _, sources, citations, timings = self.retrieve(query, collection, top_k, filters, rerank)
        answer = None
        if generate:
            t0 = time.perf_counter()
            with onnx_models.busy():
                answer = self.generator.generate(query, sources, cancelled=cancelled)
            timings["generate_ms"] = (time.perf_counter() - t0) * 1000
        return QueryResult(query, collection, answer, citations, timings)
