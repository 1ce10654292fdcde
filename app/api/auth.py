"""API keys with scopes: which collections a key may read, write and manage.

Keys are never stored, only their SHA-256 digests. ``MMRAG_API_KEYS`` lists admin keys (every
collection, every job, /metrics); ``MMRAG_API_KEYS_FILE`` is a JSON list of scoped keys::

    [{"name": "ci-bot", "sha256": "…", "write": ["reports-*"]},
     {"name": "analysts", "sha256": "…", "read": ["reports-*", "manuals"]},
     {"name": "ops", "sha256": "…", "admin": true}]

``read``: query, list, fetch documents, units, images and jobs; ``write``: upload, batch jobs,
delete documents; ``manage``: all of that and deleting the collection. Patterns are shell globs
(``*``, ``?``). With no key configured at all the service is open (a local demo).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

ACTIONS = ("read", "write", "manage")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    name: str
    admin: bool = False
    scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # action -> collection patterns

    def can(self, action: str, collection: str) -> bool:
        if self.admin:
            return True
        granted = ("manage",) if action == "manage" else (action, "manage")
        return any(fnmatchcase(collection, pat) for a in granted for pat in self.scopes.get(a, ()))

    def sees(self, collection: str) -> bool:
        """Whether the collection, and its jobs, are listed for this key at all (it may read or write it)."""
        return self.can("read", collection) or self.can("write", collection)


OPEN = Principal("anonymous", admin=True)


class KeysFileError(ValueError):
    """A malformed keys file (the service refuses to start rather than run open)."""


class KeyRing:
    def __init__(self, entries: list[tuple[str, Principal]]) -> None:
        self._entries = entries

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        entries: list[tuple[str, Principal]] = []
        for d in settings.api_keys.split(","):
            d = d.strip().lower()
            if d:
                if not _DIGEST.match(d):
                    raise KeysFileError(f"MMRAG_API_KEYS: {d[:12]}… is not a SHA-256 hex digest (echo -n KEY | sha256sum)")
                entries.append((d, Principal(f"admin-{d[:8]}", admin=True)))
        if settings.api_keys_file:
            entries += _load_file(Path(settings.api_keys_file))
        return cls(entries)

    def authenticate(self, key: str) -> Principal | None:
        given = hashlib.sha256(key.encode()).hexdigest()
        found = None
        for digest, principal in self._entries:  # every digest compared, in constant time
            if hmac.compare_digest(given, digest) and found is None:
                found = principal
        return found


def _load_file(path: Path) -> list[tuple[str, Principal]]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeysFileError(f"MMRAG_API_KEYS_FILE {path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(raw, list):
        raise KeysFileError(f"MMRAG_API_KEYS_FILE {path}: expected a JSON list of keys")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not _DIGEST.match(str(item.get("sha256", "")).lower()):
            raise KeysFileError(f"MMRAG_API_KEYS_FILE {path}: entry {i} needs a 'sha256' hex digest")
        unknown = set(item) - {"name", "sha256", "admin", *ACTIONS}
        if unknown:
            raise KeysFileError(f"MMRAG_API_KEYS_FILE {path}: entry {i} has unknown fields {sorted(unknown)}")
        scopes = {}
        for action in ACTIONS:
            pats = item.get(action, [])
            if isinstance(pats, str) or not all(isinstance(p, str) for p in pats):
                raise KeysFileError(f"MMRAG_API_KEYS_FILE {path}: entry {i}: '{action}' must be a list of collection names or globs")
            scopes[action] = tuple(pats)
        name = str(item.get("name") or f"key-{i}")
        out.append((item["sha256"].lower(), Principal(name, bool(item.get("admin", False)), scopes)))
    return out


def bearer(headers) -> str:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")
