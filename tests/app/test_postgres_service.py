"""Two `mmrag serve` replicas on one PostgreSQL database: what one ingests or deletes, the other
answers from at once; and a local collection copied to Postgres answers the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.app.conftest import free_port, wait_for


@pytest.fixture
def replicas(pg_url, tmp_path, fixtures):
    data = tmp_path / "shared"  # the blob folder (figures, PDFs) is shared too, as a volume would be
    env = {**os.environ, "MMRAG_STORE": "postgres", "MMRAG_POSTGRES_URL": pg_url, "MMRAG_LLM_BACKEND": "reader"}
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(fixtures["pdf"]), str(fixtures["docx"]), "-c", "docs",
                    "--data-dir", str(data)], env=env, check=True, capture_output=True)
    procs, bases = [], []
    for _ in range(2):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port),
                                       "--no-access-log"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        bases.append(f"http://127.0.0.1:{port}")
    for base, proc in zip(bases, procs):
        wait_for(f"{base}/readyz", proc)
    yield bases
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def ask(base, query, collection="docs"):
    r = httpx.post(f"{base}/query", json={"query": query, "collection": collection, "top_k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_replicas_share_one_database(replicas):
    a, b = replicas
    body = ask(a, "What is the iron content at Vesuvius?")
    assert body["citations"][0]["type"] == "table" and "455" in body["answer"]["text"]
    assert ask(b, "What is the iron content at Vesuvius?")["citations"][0]["unit_id"] == body["citations"][0]["unit_id"]
    note = b"The harbour lighthouse keeper lights the lamp at dusk. The lamp burns paraffin oil."
    up = httpx.post(f"{b}/collections/docs/documents", files={"file": ("keeper.txt", note)}, timeout=120)
    assert up.status_code == 201, up.text
    found = ask(a, "What does the lamp of the lighthouse burn?")
    assert found["citations"][0]["file_name"] == "keeper.txt" and "paraffin" in found["answer"]["text"]
    assert httpx.delete(f"{a}/documents/{up.json()['document_id']}").status_code == 204
    assert all(c["file_name"] != "keeper.txt" for c in ask(b, "What does the lamp of the lighthouse burn?")["citations"])
    names = {d["file_name"] for d in httpx.get(f"{b}/collections/docs/documents").json()["documents"]}
    assert names == {"survey.pdf", "survey.docx"}
    page = httpx.get(f"{b}{body['citations'][0]['page_url']}")
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"  # the shared blob folder serves pages


def test_a_local_collection_copied_to_postgres_answers_the_same(tmp_path, fixtures, pg_url):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(fixtures["pdf"]), str(fixtures["txt"]), "-c", "docs",
                    "--data-dir", str(data)], check=True, capture_output=True)
    copy = [sys.executable, "-m", "mmrag", "store", "copy", "-c", "docs", "--to", "postgres", "--to-postgres-url", pg_url,
            "--data-dir", str(data), "--no-progress"]
    first = json.loads(subprocess.run(copy, check=True, capture_output=True, text=True).stdout)
    assert (first["documents"], first["unchanged"]) == (2, 0) and first["units"] > 2
    again = json.loads(subprocess.run(copy, check=True, capture_output=True, text=True).stdout)
    assert (again["documents"], again["unchanged"]) == (0, 2)  # resumable: nothing copied twice
    query = [sys.executable, "-m", "mmrag", "query", "What do farmers grow on the slopes of Etna?", "-c", "docs",
             "--data-dir", str(data), "--json"]
    local = json.loads(subprocess.run(query, check=True, capture_output=True, text=True).stdout)
    pg = json.loads(subprocess.run(query, check=True, capture_output=True, text=True,
                                   env={**os.environ, "MMRAG_STORE": "postgres", "MMRAG_POSTGRES_URL": pg_url}).stdout)
    assert [c["snippet"] for c in local["citations"]] == [c["snippet"] for c in pg["citations"]]
    assert local["answer"]["text"] == pg["answer"]["text"] and "pistachios" in pg["answer"]["text"]
