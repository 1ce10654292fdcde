"""The store's records: typed rows in and out of every backend (see ``indexes.base``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from mmrag.errors import ModelMismatch
from mmrag.units import Unit, search_text


@dataclass(frozen=True)
class UnitFilter:
    """Which units a search may return. ``None`` means any; an empty list matches nothing (clients
    pass access lists here, and "none allowed" is not "all")."""

    types: tuple[str, ...] | None = None  # text / table / image
    document_ids: tuple[int, ...] | None = None

    @classmethod
    def of(cls, types: Sequence[str] | None = None, document_ids: Sequence[int] | None = None) -> UnitFilter | None:
        if types is None and document_ids is None:
            return None
        return cls(None if types is None else tuple(types), None if document_ids is None else tuple(int(d) for d in document_ids))

    @property
    def matches_nothing(self) -> bool:
        return self.types == () or self.document_ids == ()


@dataclass
class NewUnit:
    """A unit as ingestion writes it: the parsed unit and its vectors (None where it has none)."""

    unit: Unit
    text_vec: np.ndarray | None = None
    image_vec: np.ndarray | None = None
    sentence_vecs: np.ndarray | None = None  # one row per sentence, for units of several sentences


@dataclass
class NewDocument:
    """One parsed document to commit: all of it becomes visible at once, replacing an older version
    from the same source."""

    collection_id: int
    source: str
    file_name: str
    content_hash: str
    format: str
    pages: int | None
    size_bytes: int
    units: list[NewUnit] = field(default_factory=list)
    original_path: str | None = None  # the stored file pages are rendered from (PDF), in the blob folder


@dataclass
class DocumentRecord:
    id: int
    collection_id: int
    source: str
    file_name: str
    status: str  # done / failed
    content_hash: str | None = None
    format: str | None = None
    error: str | None = None
    pages: int | None = None
    n_units: int = 0
    size_bytes: int | None = None
    original_path: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CollectionRecord:
    id: int
    name: str
    generation: int
    created_at: float
    documents: int  # documents stored and searchable
    units: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StagedVectors:
    """A unit's vectors from a re-embedding, held aside until the whole collection swaps at once."""

    unit_id: int
    text_vec: np.ndarray | None
    image_vec: np.ndarray | None
    sentence_vecs: np.ndarray | None


@dataclass
class StoredUnit:
    id: int
    document_id: int
    collection_id: int
    type: str
    position: int
    page: int | None
    bbox: list[float] | None
    heading: list[str]
    text: str
    html: str | None
    caption: str | None
    image_path: str | None
    meta: dict

    def search_text(self) -> str:
        return search_text(self.heading, self.caption, self.text)


# What collections made before models were recorded were embedded with: the defaults of then.
LEGACY_MODELS = {"text": "packaged:all-MiniLM-L6-v2", "image": "mmrag-bridge-lite0:mmrag-bridge-lite0-v1.pt"}


def check_models(collection: str, recorded: dict[str, str] | None, current: dict[str, str]) -> None:
    if not recorded:
        return
    for kind in ("text", "image"):
        was, now = recorded.get(kind, "none"), current.get(kind, "none")
        if was != now and "none" not in (was, now):  # images ingested without vectors, or searched without: no conflict
            setting = "MMRAG_TEXT_MODEL" if kind == "text" else "MMRAG_IMAGE_MODEL / MMRAG_IMAGE_PRETRAINED"
            assumed = (" (assumed: the collection was made before mmrag recorded models, when this was the default)"
                       if recorded.get("assumed") else "")
            raise ModelMismatch(f"collection {collection!r} holds {kind} vectors from {was!r}{assumed}, but this process uses "
                                f"{now!r}: set {setting} to match, or re-embed it with `mmrag reembed -c {collection}`")
