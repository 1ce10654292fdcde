"""Where a document's relative references (``<img src="fig.png">`` in HTML or Markdown) may be read.

A reference is resolved against the document's *own* folder, never the process's working directory,
and read only if, symlinks resolved, it stays inside that folder and inside every allowed root, lies
outside the denied folders (the data directory: docstore, indexes, keys in ``.env``), has no hidden
path part, and its bytes are an image. An uploaded file has no folder, so it has no references.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_ASSET_BYTES = 50 * 2**20


@dataclass(frozen=True)
class AssetFolder:
    root: Path
    allowed: tuple[Path, ...] = ()  # when set, a reference must also resolve inside one of these
    denied: tuple[Path, ...] = ()

    @classmethod
    def beside(cls, document: str | Path, allowed=(), denied=()) -> AssetFolder:
        """The folder of a document on disk (resolved), for a batch or the CLI."""
        return cls(Path(document).resolve().parent, tuple(Path(a).resolve() for a in allowed),
                   tuple(Path(d).resolve() for d in denied))

    def _permitted(self, path: Path) -> bool:
        if not path.is_relative_to(self.root):
            return False
        if self.allowed and not any(path.is_relative_to(a) for a in self.allowed):
            return False
        if any(path.is_relative_to(d) for d in self.denied):
            return False
        return not any(part.startswith(".") for part in path.relative_to(self.root).parts)

    def read_image(self, ref: str) -> tuple[bytes, str] | None:
        """The bytes and extension of a referenced picture, or None (refused or missing, logged)."""
        from ingest.detect import detect_format
        from mmrag.errors import DocumentError

        ref = ref.split("?")[0].split("#")[0].strip()
        if not ref or Path(ref).is_absolute() or any(part.startswith(".") and part not in (".", "..") for part in Path(ref).parts):
            log.warning("image reference %r refused (absolute or hidden path)", ref[:200])
            return None
        try:
            path = (self.root / ref).resolve()
            if not self._permitted(path):
                log.warning("image reference %r refused: it leads outside the document's folder", ref[:200])
                return None
            if not path.is_file() or path.stat().st_size > MAX_ASSET_BYTES:
                return None
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        try:
            if detect_format(data, path.name) != "image":
                raise DocumentError("not an image")
        except DocumentError:
            log.warning("image reference %r refused: the file is not an image", ref[:200])
            return None
        return data, path.suffix.lstrip(".").lower() or "png"
