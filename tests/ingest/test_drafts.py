"""Drafts: a PDF's finished pages embedded while a real parse worker reads the rest (ingest.drafts)."""

import numpy as np
import pytest

from tests.fixturegen import make_pdf, make_two_column_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return make_two_column_report(tmp_path_factory.mktemp("drafts") / "report.pdf", pages=8)


def test_drafts_hold_the_texts_the_whole_document_is_chunked_into(report, tmp_path):
    from ingest.pipeline import parse_file
    from mmrag.settings import Settings

    drafts = []
    settings = Settings(data_dir=tmp_path / "data", parse_draft_s=1e-6)  # a draft after every page
    parsed, error, _ = parse_file(str(report), "report.pdf", settings, str(tmp_path / "blobs"), None, drafts.append)
    assert error is None and len(drafts) >= 4
    final = {u.search_text() for u in parsed.units}
    drafted = [t for d in drafts for t in d.passages]
    assert len(set(drafted) & final) >= 0.7 * len(final)
    # the running header repeats on every page: the first pages' drafts may still hold it, later ones drop it
    assert not any("Coastal Energy Review" in t for d in drafts[3:] for t in d.passages)
    # no draft without a listener: parsing alone sends nothing and gives the same units
    again, _, _ = parse_file(str(report), "report.pdf", settings, str(tmp_path / "blobs"), None)
    assert [u.search_text() for u in again.units] == [u.search_text() for u in parsed.units]


def test_a_worker_drafting_stores_what_ingestion_without_drafts_stores(tmp_path, text_embedder, image_embedder):
    """Sections of several sentences (sentence vectors), a table and a picture (image vectors) on page one."""
    from indexes.factory import open_store
    from ingest.pipeline import Ingestor
    from mmrag.settings import Settings

    report = make_pdf(tmp_path / "sections.pdf", pages=8)
    stored = {}
    for label, draft_s in (("drafts", 1e-6), ("plain", 0.0)):
        settings = Settings(data_dir=tmp_path / label, parse_workers=1, parse_draft_s=draft_s)
        store = open_store(settings)
        ingestor = Ingestor(store, settings, text_embedder, image_embedder)
        try:
            summary = ingestor.ingest_paths([report], "c", progress=False)
        finally:
            ingestor.close()
        assert summary.ok == 1, summary.files
        cid = store.collection_id("c")
        ids = store.unit_ids(cid)
        units = store.units(ids.tolist())
        got, vecs = store.vectors(ids, "text")
        got_images, images = store.vectors(ids, "image")
        stored[label] = (summary, [units[int(i)].text for i in ids], dict(zip(got.tolist(), vecs)),
                         store.sentence_vectors(ids), ids, images)
        store.close()
    (with_drafts, texts, vecs, sentences, ids, images), (plain, plain_texts, plain_vecs, plain_sentences, plain_ids,
                                                         plain_images) = stored.values()
    assert with_drafts.drafted >= len(texts) // 2 and plain.drafted == 0
    assert texts == plain_texts and len(sentences) == len(plain_sentences) >= 7
    assert len(images) == len(plain_images) == 1 and float(images[0] @ plain_images[0]) > 0.999
    for a, b in zip(ids.tolist(), plain_ids.tolist()):
        assert float(vecs[a] @ plain_vecs[b]) > 0.999  # fp32 passages: equal but for batch padding
        if a in sentences or b in plain_sentences:
            assert sentences[a].shape == plain_sentences[b].shape
            assert np.all(np.sum(sentences[a] * plain_sentences[b], axis=1) > 0.98)  # int8: scales are per batch
