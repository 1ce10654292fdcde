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
    from indexes.store import LocalStore

    store = LocalStore(data)
    total = 0
    for c in store.collections():
        ci = store.indexes(c.id)
        text_ids = set(store.docs.unit_ids(c.id, "text_vec").tolist())
        all_ids = set(store.unit_ids(c.id).tolist())
        assert set(ci.bm25.ids().tolist()) == all_ids
        assert (set(ci.vectors["text"].ids().tolist()) if ci.vectors["text"] else set()) == text_ids
        total += c.documents
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


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie holds no files


def test_a_killed_ingest_leaves_no_orphan_worker_and_no_stuck_lock(tmp_path):
    """kill -9 of the `mmrag ingest` process alone (not its group): its parse workers must go with it,
    and the next ingestion must get the writer lock at once."""
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, n_text=40)
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "MMRAG_OCR_ENGINE": "none", "MMRAG_PARSE_WORKERS": "2"}
    cmd = [sys.executable, "-m", "mmrag", "ingest", str(corpus), "-c", "k", "--data-dir", str(data), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if workers and done_count(data / "mmrag.sqlite") >= 1:
            break
        time.sleep(0.05)
    assert workers and proc.poll() is None, "the ingestion ended before it could be killed mid-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(w) for w in workers):
        time.sleep(0.1)
    survivors = [w for w in workers if _running(w)]
    for w in survivors:  # do not leave them behind when this fails
        os.kill(w, signal.SIGKILL)
    assert not survivors, "parse workers outlived their parent"
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.monotonic() - t0 < 120  # no wait on a lock (it would be 600 s, then an error)
    assert check_store(data) == 48


def test_a_busy_lock_names_its_holder(tmp_path):
    from indexes.base import WriterBusy
    from indexes.store import LocalStore

    data = tmp_path / "data"
    LocalStore(data)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from indexes.store import LocalStore; s = LocalStore(sys.argv[1]);\n"
                               "with s.writer():\n    print('held', flush=True); time.sleep(60)", str(data)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusy, match=f"pid {holder.pid} .*running"):
            with LocalStore(data).writer(wait_s=0.3):
                pass
        # `mmrag unlock` reports it and leaves a live writer alone
        out = subprocess.run([sys.executable, "-m", "mmrag", "unlock", "--data-dir", str(data)], capture_output=True, text=True)
        assert out.returncode == 1 and f"pid {holder.pid}" in out.stdout
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    with LocalStore(data).writer(wait_s=1):  # released by the kernel when its holder died
        pass
