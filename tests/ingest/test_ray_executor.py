"""Batch ingestion on Ray: a real local Ray cluster, real parsing and embedding in its actors, a real
store; a worker killed with SIGKILL mid-batch loses nothing and leaves nothing half-visible."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["harbour", "lighthouse", "granite", "tide", "lamp", "keeper", "storm", "reef", "anchor", "compass", "pier", "buoy",
          "beacon", "channel"]


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for i, topic in enumerate(TOPICS):
        paras = [f"Section {k} of report {i}. The {topic} was inspected in year {1900 + 7 * k + i}. "
                 f"Its {topic} log notes {k * 3 + i} visits by the keeper and a repaired rope." for k in range(40)]
        (folder / f"{topic}.md").write_text(f"# Report on the {topic}\n\n" + "\n\n".join(paras))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")


def ray_workers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "^ray::IngestWorker"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "postgres"])
def test_a_killed_worker_costs_nothing_committed_and_the_batch_completes(backend, tmp_path, request):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMRAG_IMAGE_MODEL": "none"}
    if backend == "postgres":
        env.update(MMRAG_STORE="postgres", MMRAG_POSTGRES_URL=request.getfixturevalue("pg_url"))
    cmd = [sys.executable, "-m", "mmrag", "ingest", str(corpus), "-c", "k", "--data-dir", str(data), "--executor", "ray",
           "--ray-workers", "2", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    from indexes.factory import open_store
    from mmrag.settings import Settings

    settings = Settings(data_dir=data, store=backend, postgres_url=env.get("MMRAG_POSTGRES_URL"))
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        store = open_store(settings) if (data / "mmrag.sqlite").exists() or backend == "postgres" else None
        cid = store.collection_id("k") if store is not None else None
        done = [d for d in store.documents(cid) if d.status == "done"] if cid is not None else []
        if store is not None:
            store.close()
        workers = ray_workers()
        if len(done) >= 2 and workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # wherever it is: parsing, embedding, or inside a commit
    out, err = proc.communicate(timeout=600)
    assert killed is not None, f"no worker to kill before the batch ended: {err[-2000:]}"
    summary = json.loads(out)
    by_name = {Path(f["path"]).name: f for f in summary["files"]}
    assert by_name["broken.pdf"]["status"] == "failed"
    assert all(by_name[f"{t}.md"]["status"] == "ok" for t in TOPICS), [f for f in summary["files"] if f["status"] != "ok"]

    store = open_store(settings)
    cid = store.collection_id("k")
    docs = store.documents(cid)
    assert sorted(d.file_name for d in docs if d.status == "done") == sorted(f"{t}.md" for t in TOPICS)
    for d in docs:  # every document whole: its units all there, each searchable
        units = store.document_units(d.id)
        assert len(units) == d.n_units
        if d.status == "done":
            assert len(units) > 5
            assert set(store.keyword_scores(cid, d.file_name[:-3]).top(100)[0].tolist()) & {u.id for u in units}
    assert store.vector_count(cid, "text") == len(store.unit_ids(cid))
    store.close()
    again = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=ROOT).stdout)
    assert again["skipped"] == len(TOPICS) and again["ok"] == 0  # resumed: nothing done twice
