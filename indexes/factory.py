"""A store backend chosen by name (``MMRAG_STORE``): the one place that maps names to classes."""

from __future__ import annotations

from indexes.base import DocumentStore

BACKENDS = ("local", "postgres")


def open_store(settings) -> DocumentStore:
    name = settings.store
    if name == "local":
        from indexes.store import LocalStore

        return LocalStore.from_settings(settings)
    if name == "postgres":
        from indexes.postgres import PostgresStore  # needs the [postgres] extra

        return PostgresStore.from_settings(settings)
    raise ValueError(f"unknown store {name!r}: choose one of {', '.join(BACKENDS)}")
