"""The postgres backend passes the store contract against a real PostgreSQL server with pgvector."""

import pytest

from indexes.postgres import PostgresStore
from tests.indexes.contract import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_url, tmp_path):
        store = PostgresStore(pg_url, tmp_path / "blobs")
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, pg_url, tmp_path):
        opened = []

        def make():
            opened.append(PostgresStore(pg_url, tmp_path / "blobs"))
            return opened[-1]

        yield make
        for store in opened:
            store.close()


WRITER = """
import sys, time
from indexes.postgres import PostgresStore
from tests.indexes.contract import new_document, new_units
store = PostgresStore(sys.argv[1], sys.argv[2])
cid = store.collection_id("c", create=True)
n = 0
while True:  # documents of 40 units, some replacing earlier ones, until killed
    name = f"d{n % 7}.md"
    texts = [f"unit {k} of round {n} about harbour tide {n % 5} and lamp {k % 3}" for k in range(40)]
    store.commit_document(new_document(cid, name, new_units(name, texts), content_hash=str(n)))
    n += 1
    print(n, flush=True)
"""


def test_kill_9_mid_commit_leaves_every_document_whole_and_the_bm25_statistics_exact(pg_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(tmp_path / "blobs")], cwd=root, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(root)})
    for _ in range(6):  # let a few commits land, then kill it wherever it is
        assert proc.stdout.readline(), "the writer died on its own"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = PostgresStore(pg_url, tmp_path / "blobs")
    cid = store.collection_id("c")
    docs = store.documents(cid)
    assert docs and all(d.status == "done" and d.n_units == 40 == len(store.document_units(d.id)) for d in docs)
    (n_units, total), = store._rows("SELECT n_units, total_terms FROM collections WHERE id = %s", (cid,))
    assert (n_units, total) == store._rows("SELECT count(*), sum(n_terms) FROM units WHERE collection_id = %s", (cid,))[0]
    df = dict(store._rows("SELECT term, df FROM terms WHERE collection_id = %s", (cid,)))
    assert df == dict(store._rows("SELECT term, count(*) FROM postings WHERE collection_id = %s GROUP BY term", (cid,)))
    assert store.vector_count(cid, "text") == n_units
    store.close()
