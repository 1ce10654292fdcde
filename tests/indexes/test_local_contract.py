"""The local backend (SQLite + FAISS + BM25 files) passes the store contract, with exact and with
HNSW vector search (HNSW masks removed vectors and filters by id selector)."""

import pytest

from indexes.store import LocalStore
from indexes.vectors import IndexParams
from tests.indexes.contract import StoreContract


class TestLocalStore(StoreContract):
    @pytest.fixture(params=["exact", "hnsw"])
    def store(self, tmp_path, request):
        self.params = IndexParams() if request.param == "exact" else IndexParams(flat_max=2, ann="hnsw")
        store = LocalStore(tmp_path / "data", self.params)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, tmp_path):
        return lambda: LocalStore(tmp_path / "data", self.params)
