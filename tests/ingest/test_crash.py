"""SIGKILL an ingestion at random points; after each kill the store must be whole and consistent."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from tests.fixturegen import make_docx, make_pdf

ROUNDS = 6


def make_corpus(root: Path, n_text: int = 60) -> int:
    root.mkdir(parents=True)
    rng = random.Random(7)
    words = "river mountain harbour lantern copper meadow falcon orchard glacier canyon".split()
    for i in range(n_text):
        body = "\n\n".join(" ".join(rng.choice(words) for _ in range(40)) + "." for _ in range(6))
        (root / f"note{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n")
    for i in range(4):
        make_pdf(root / f"report{i}.pdf", pages=3)
        make_docx(root / f"memo{i}.docx")
    return n_text + 8


def done_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM documents WHERE status='done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def check_store(data: Path) -> int:
    db = data / "mmrag.sqlite"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # a document is wholly there or absent
    for doc_id, n_units, status in conn.execute("SELECT id, n_units, status FROM documents"):
        have = conn.execute("SELECT COUNT(*) FROM units WHERE document_id = ?", (doc_id,)).fetchone()[0]
        assert have == (n_units if status == "done" else 0), (doc_id, status, n_units, have)
    assert conn.execute("SELECT COUNT(*) FROM units WHERE document_id NOT IN (SELECT id FROM documents)").fetchone()[0] == 0
    conn.close()
    # every snapshot file on disk is complete (atomic replace: old or new, never torn)
    for folder in (data / "indexes").glob("*"):
        manifest = folder / "manifest.json"
        if manifest.exists():
            json.loads(manifest.read_text())
        for f in folder.glob("*.faiss"):
            faiss.read_index(str(f))
        for f in folder.glob("*.npz"):
            with np.load(f) as z:
                assert len(z["ptr"]) == len(z["ids"]) + 1
    # and once loaded, the indexes agree with the docstore exactly
    from indexes.store import Store

    store = Store(data)
    total = 0
    for c in store.docs.collections():
        ci = store.indexes(c["id"])
        text_ids = set(store.docs.unit_ids(c["id"], "text_vec").tolist())
        all_ids = set(store.docs.unit_ids(c["id"], "text").tolist())
        assert set(ci.bm25.ids().tolist()) == all_ids
        assert (set(ci.vectors["text"].ids().tolist()) if ci.vectors["text"] else set()) == text_ids
        total += c["documents"]
    store.docs.close()
    return total


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_a_consistent_store(tmp_path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    n_files = make_corpus(corpus)
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "MMRAG_COMMIT_EVERY": "1", "MMRAG_SNAPSHOT_INTERVAL_S": "0", "MMRAG_OCR_ENGINE": "none",
           "MMRAG_EMBED_BATCH_SIZE": "8", "MMRAG_PARSE_WORKERS": "1"}
    cmd = [sys.executable, "-m", "mmrag", "ingest", str(corpus), "-c", "crash", "--data-dir", str(data), "--no-progress"]
    rng = random.Random(1234)
    kills = 0
    for _ in range(ROUNDS):
        before = done_count(data / "mmrag.sqlite")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        target = before + rng.randint(1, 8)
        deadline = time.monotonic() + 120
        while proc.poll() is None and done_count(data / "mmrag.sqlite") < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.25))  # land anywhere: mid-parse, mid-embed, mid-commit, mid-snapshot
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        check_store(data)
    assert kills >= ROUNDS - 1
    # a final uninterrupted run completes the collection; nothing is duplicated
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert check_store(data) == n_files
