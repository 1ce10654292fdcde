"""Batch ingestion with real parsing, real embeddings, real FAISS and SQLite."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.fixturegen import PARA2


@pytest.fixture
def corpus(fixtures, tmp_path):
    """A folder mixing every good format with every bad one."""
    root = tmp_path / "corpus"
    shutil.copytree(fixtures["pdf"].parent, root / "good")
    shutil.copytree(fixtures["empty"].parent, root / "bad")
    (root / "good" / ".hidden.txt").write_text("hidden files are skipped")
    return root


def test_batch_ingests_good_files_and_fails_bad_ones_with_reasons(ingestor, corpus):
    summary = ingestor.ingest_paths([corpus], "docs", progress=False)
    n_good = len(list((corpus / "good").iterdir())) - 1
    n_bad = len(list((corpus / "bad").iterdir()))
    assert (summary.ok, summary.failed, summary.skipped) == (n_good, n_bad, 0)
    reasons = {f.path.split("/")[-1]: f.reason for f in summary.files if f.status == "failed"}
    assert "encrypted" in reasons["encrypted.pdf"] and "password" in reasons["password.docx"]
    assert "decompression bomb" in reasons["bomb.docx"] and "empty" in reasons["empty.pdf"]
    store = ingestor.store
    cid = store.collection_id("docs")
    docs = store.documents(cid)
    assert sum(d.status == "done" for d in docs) == n_good
    assert all(d.error for d in docs if d.status == "failed")
    ci = store.indexes(cid)
    n_units = sum(d.n_units for d in docs)
    assert len(ci.bm25) == n_units == summary.units
    # every image unit that PIL can read has an image vector; every unit with text has a text vector
    assert len(ci.vectors["image"]) == len(store.docs.unit_ids(cid, "image_vec")) > 5
    assert len(ci.vectors["text"]) == len(store.docs.unit_ids(cid, "text_vec"))
    # the summary says where the time went, OCR (the scanned PDF) as a part of parsing
    stages = summary.stages
    assert 0 < stages["ocr"] < stages["parse"] and stages["text"] > 0 and "ocr" in summary.stage_line()


def test_reingest_is_a_noop_and_a_changed_file_replaces_its_units(ingestor, fixtures, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    note = folder / "note.md"
    note.write_text("# Tides\n\nThe tide rises twice a day at the harbour.")
    shutil.copy(fixtures["txt"], folder / "soil.txt")
    first = ingestor.ingest_paths([folder], "c", progress=False)
    assert first.ok == 2
    again = ingestor.ingest_paths([folder], "c", progress=False)
    assert (again.ok, again.skipped) == (0, 2)
    store = ingestor.store
    cid = store.collection_id("c")
    before = set(store.unit_ids(cid).tolist())
    note.write_text("# Tides\n\nThe moon pulls the ocean; spring tides follow the full moon.")
    third = ingestor.ingest_paths([folder], "c", progress=False)
    assert (third.ok, third.skipped) == (1, 1)
    after = set(store.unit_ids(cid).tolist())
    assert len(before - after) == 1 and len(after - before) == 1
    ids, _ = store.indexes(cid).bm25.search("harbour", 5)
    assert len(ids) == 0
    ids, _ = store.indexes(cid).bm25.search("spring tides moon", 5)
    assert store.units(ids.tolist())[ids[0]].text.startswith("The moon pulls")


def test_dense_vectors_find_the_right_unit(ingestor, fixtures, text_embedder):
    ingestor.ingest_paths([fixtures["docx"]], "c", progress=False)
    store = ingestor.store
    cid = store.collection_id("c")
    q = text_embedder.embed(["How often is irrigation scheduled?"], kind="query")
    _, hits = store.indexes(cid).vectors["text"].search(q, 1)
    assert PARA2[:30] in store.units([int(hits[0, 0])])[int(hits[0, 0])].text


def test_upload_path_ingests_bytes(ingestor, fixtures):
    res = ingestor.ingest_bytes(fixtures["pdf"].read_bytes(), "survey.pdf", "up")
    assert res.status == "ok" and res.units >= 4
    assert ingestor.ingest_bytes(fixtures["pdf"].read_bytes(), "survey.pdf", "up").status == "skipped"
    bad = ingestor.ingest_bytes(fixtures["encrypted_pdf"].read_bytes(), "enc.pdf", "up")
    assert bad.status == "failed" and "encrypted" in bad.reason


def test_cli_ingest_list_delete(fixtures, tmp_path):
    data = str(tmp_path / "data")
    env_cmd = [sys.executable, "-m", "mmrag"]
    run = subprocess.run(env_cmd + ["ingest", str(fixtures["txt"]), str(fixtures["encrypted_pdf"]), "-c", "k", "--data-dir", data, "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # one file failed
    summary = json.loads(run.stdout)
    assert (summary["ok"], summary["failed"]) == (1, 1)
    listed = json.loads(subprocess.run(env_cmd + ["list", "-c", "k", "--data-dir", data, "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    assert {d["file_name"]: d["status"] for d in listed["documents"]} == {"notes.txt": "done", "encrypted.pdf": "failed"}
    subprocess.run(env_cmd + ["delete", "notes.txt", "-c", "k", "--data-dir", data], check=True, capture_output=True)
    from indexes.store import LocalStore

    store = LocalStore(tmp_path / "data")
    cid = store.collection_id("k")
    ci = store.indexes(cid)
    assert len(ci.bm25) == 0 and (ci.vectors["text"] is None or len(ci.vectors["text"]) == 0)
    assert np.all([d.file_name != "notes.txt" for d in store.documents(cid)])


def test_a_pdf_is_kept_once_for_its_page_images_and_removed_with_its_last_document(ingestor, fixtures, tmp_path):
    from pathlib import Path

    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.pdf", "b.pdf"):  # the same bytes under two names: one stored copy
        shutil.copy(fixtures["pdf"], folder / name)
    assert ingestor.ingest_paths([folder], "orig", progress=False).ok == 2
    store = ingestor.store
    cid = store.collection_id("orig")
    docs = {d.file_name: d for d in store.documents(cid)}
    original = Path(docs["a.pdf"].original_path)
    assert docs["b.pdf"].original_path == str(original)
    assert original.read_bytes() == fixtures["pdf"].read_bytes() and original.is_relative_to(store.blob_dir)
    store.delete_document(docs["a.pdf"].id)
    assert original.exists()  # b.pdf still points at it
    store.delete_collection(cid)
    assert not original.exists()


def test_reparse_parses_unchanged_files_again_and_replaces_their_units(ingestor, tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "note.md").write_text("# Tides\n\nThe tide rises twice a day at the harbour.")
    assert ingestor.ingest_paths([folder], "re", progress=False).ok == 1
    store = ingestor.store
    cid = store.collection_id("re")
    before = set(store.docs.unit_ids(cid, "text_vec").tolist())
    again = ingestor.ingest_paths([folder], "re", progress=False, reparse=True)
    assert (again.ok, again.skipped) == (1, 0)
    after = set(store.docs.unit_ids(cid, "text_vec").tolist())
    assert after and not (after & before) and len(store.documents(cid)) == 1
    assert len(store.indexes(cid).bm25) == len(after)
