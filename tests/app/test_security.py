"""The attack-and-fault pass (#24), against a real `mmrag serve` with generated hostile files.

The server runs from its own working directory, which holds a `.env` with an LLM key and the data
directory (`data/`), as an operator would start it; keys with scopes come from a keys file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.app.conftest import free_port, set_mode, wait_for
from tests.fixturegen import picture, png_bytes
from tests.hostile import big_docx, docx_bomb, huge_page_pdf, tiff_with_huge_second_frame

SECRET = "sk-THE-SECRET-LLM-KEY-4711"
KEYS = {"admin": "key-admin", "reader": "key-alpha-reader", "writer": "key-alpha-writer", "beta": "key-beta"}


def auth(who: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def secure(tmp_path_factory, llm_server):
    root = tmp_path_factory.mktemp("secure")
    cwd = root / "srv"
    cwd.mkdir()
    (cwd / ".env").write_text(f"MMRAG_LLM_API_KEY={SECRET}\n")
    roots = root / "roots"
    roots.mkdir()
    keys = root / "keys.json"
    keys.write_text(json.dumps([
        {"name": "ops", "sha256": digest(KEYS["admin"]), "admin": True},
        {"name": "alpha-reader", "sha256": digest(KEYS["reader"]), "read": ["alpha"]},
        {"name": "alpha-writer", "sha256": digest(KEYS["writer"]), "read": ["alpha"], "write": ["alpha"]},
        {"name": "beta", "sha256": digest(KEYS["beta"]), "read": ["beta*"], "write": ["beta*"], "manage": ["beta*"]},
    ]))
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "MMRAG_CROSS_ENCODER": "", "MMRAG_OCR_ENGINE": "none",
           "MMRAG_API_KEYS_FILE": str(keys), "MMRAG_INGEST_ROOTS": str(roots), "MMRAG_LLM_BACKEND": "openai",
           "MMRAG_LLM_URL": f"{llm_server}/v1", "MMRAG_LLM_MODEL": "fake", "MMRAG_LLM_TIMEOUT_S": "3",
           "MMRAG_LLM_RETRIES": "0", "MMRAG_LLM_DEADLINE_S": "8", "MMRAG_LLM_MAX_ANSWER_CHARS": "5000",
           "MMRAG_PARSE_TIMEOUT_S": "1.5", "MMRAG_MAX_UPLOAD_MB": "5", "MMRAG_UPLOAD_WAIT_S": "30"}
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - the server's whole life
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", "data", "--port", str(port), "--no-access-log"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz", proc)
    yield {"url": base, "roots": roots, "root": root, "cwd": cwd, "proc": proc}
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()  # leave no server behind, even if its shutdown hangs
        proc.wait(10)
        raise
    finally:
        log.close()


def upload(secure, collection: str, name: str, data: bytes, who: str = "writer", **params):
    return httpx.post(f"{secure['url']}/collections/{collection}/documents", files={"file": (name, data)},
                      params=params, headers=auth(who), timeout=120)


def wait_job(secure, job_id: str, who: str = "writer", seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = httpx.get(f"{secure['url']}/jobs/{job_id}", headers=auth(who), timeout=10).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise TimeoutError(job_id)


def units(secure, doc_id: int, who: str = "writer") -> list[dict]:
    r = httpx.get(f"{secure['url']}/documents/{doc_id}/units", headers=auth(who), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["units"]


# -- 1. a document cannot read the server's files --------------------------------------------
def test_an_uploaded_page_cannot_read_files_of_the_server(secure):
    html = (b"<html><body><p>Basalt columns form as lava cools slowly.</p>"
            b'<img src=".env"><img src="data/mmrag.sqlite"><img src="./data/mmrag.sqlite"><img src="../srv/.env">'
            b'<img src="/etc/passwd"><img src="file:///etc/passwd" alt="x"></body></html>')
    md = b"# Notes\n\nObsidian is volcanic glass.\n\n![d](data/mmrag.sqlite)\n\n![e](.env)\n"
    for name, data in (("page.html", html), ("notes.md", md)):
        r = upload(secure, "alpha", name, data)
        assert r.status_code == 201, r.text
        got = units(secure, r.json()["document_id"])
        assert got and not [u for u in got if u["type"] == "image"], got
        assert all(SECRET not in (u["text"] or "") for u in got)


def test_a_batch_page_reads_pictures_from_its_own_folder_only(secure):
    site = secure["roots"] / "site"
    site.mkdir()
    pic = png_bytes(picture((120, 90)))
    (site / "pic.png").write_bytes(pic)
    (secure["roots"] / "elsewhere.png").write_bytes(png_bytes(picture((100, 80))))
    (site / ".hidden.png").write_bytes(pic)
    (site / "fake.png").write_text(f"MMRAG_LLM_API_KEY={SECRET}\n")  # not an image: never stored as one
    (site / "page.html").write_text('<p>Pumice floats on water.</p><img src="pic.png" alt="pumice"><img src="../elsewhere.png">'
                                    '<img src=".hidden.png"><img src="fake.png">')
    r = httpx.post(f"{secure['url']}/collections/alpha/jobs", json={"paths": [str(site / "page.html")]}, headers=auth("writer"))
    assert r.status_code == 202, r.text
    job = wait_job(secure, r.json()["id"])
    assert job["status"] == "done" and job["ok"] == 1, job
    images = [u for u in units(secure, job["files"][0]["document_id"]) if u["type"] == "image"]
    assert len(images) == 1
    served = httpx.get(secure["url"] + images[0]["image_url"], headers=auth("reader"))
    assert served.status_code == 200 and served.content == pic


# -- 2. links cannot escape MMRAG_INGEST_ROOTS -------------------------------------------------
def test_symlinks_out_of_the_ingest_roots_are_not_read(secure):
    outside = secure["root"] / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is zirconium unobtainium 9931.\n")
    folder = secure["roots"] / "linked"
    folder.mkdir()
    (folder / "fine.txt").write_text("Tuff is rock made of volcanic ash.\n")
    (folder / "leak.txt").symlink_to(outside / "secret.txt")
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    r = httpx.post(f"{secure['url']}/collections/alpha/jobs", json={"paths": [str(folder)]}, headers=auth("writer"))
    job = wait_job(secure, r.json()["id"])
    assert job["ok"] == 1, job
    refused = {f["file_name"]: f["reason"] for f in job["failures"]}
    assert "leak.txt" in refused and "outside MMRAG_INGEST_ROOTS" in refused["leak.txt"]
    body = httpx.post(f"{secure['url']}/query", json={"query": "vault code zirconium unobtainium", "collection": "alpha",
                                                       "generate": False}, headers=auth("reader")).json()
    assert all("unobtainium" not in c["snippet"] for c in body["citations"])
    # a top-level path outside the roots is refused before anything runs
    r = httpx.post(f"{secure['url']}/collections/alpha/jobs", json={"paths": [str(outside)]}, headers=auth("writer"))
    assert r.status_code == 403


# -- 3. uploads are jobs under budgets; health and queries never wait ---------------------------
def test_bombs_and_slow_documents_fail_their_own_document_quickly(secure):
    t0 = time.monotonic()
    r = upload(secure, "alpha", "bomb.docx", docx_bomb())
    assert r.status_code == 422 and ("decompression bomb" in r.json()["reason"] or "limit" in r.json()["reason"]), r.text
    assert time.monotonic() - t0 < 20
    # under every size limit, but its parse outlasts MMRAG_PARSE_TIMEOUT_S (1.5 s here): stopped
    r = upload(secure, "alpha", "long.docx", big_docx(150_000))
    assert r.status_code == 422 and "longer than 1.5 s" in r.json()["reason"], r.text
    # a 40 KB run of letters without a space (one "word" to a tokenizer) is cut into units within the chunk limit
    r = upload(secure, "alpha", "oneline.txt", b"a" * 40_000)
    assert r.status_code == 201, r.text
    assert max(len(u["text"]) for u in units(secure, r.json()["document_id"])) <= 200 * 8


def test_health_and_queries_answer_while_uploads_stall_and_abandoned_uploads_stop(secure):
    url = secure["url"]
    # a parse that runs into its budget, then a document with 900 texts to embed (about 20 s here)
    slow = threading.Thread(target=lambda: upload(secure, "alpha", "long2.docx", big_docx(150_000, seed=5)))
    slow.start()
    many = "\n\n".join(f"Vent {i} erupted in year {1000 + i}. Its plume rose {i % 17} km. Ash fell on village {i}." for i in range(220))
    heavy = upload(secure, "alpha", "many.txt", many.encode(), wait=0)
    assert heavy.status_code == 202
    dropped = []

    def abandon(i: int) -> None:
        try:
            httpx.post(f"{url}/collections/alpha/documents", files={"file": (f"abandoned-{i}.txt", f"Scoria sample {i}.".encode())},
                       headers=auth("writer"), timeout=0.3)
        except httpx.TimeoutException:
            dropped.append(i)

    droppers = [threading.Thread(target=abandon, args=(i,)) for i in range(40)]
    for t in droppers:
        t.start()
    worst, rounds = 0.0, 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # for as long as the heavy document is being parsed and embedded
        for path in ("/healthz", "/readyz"):
            t0 = time.monotonic()
            assert httpx.get(url + path, timeout=10).status_code == 200
            worst = max(worst, time.monotonic() - t0)
        t0 = time.monotonic()
        r = httpx.post(f"{url}/query", json={"query": "basalt lava", "collection": "alpha", "generate": False},
                       headers=auth("reader"), timeout=30)
        assert r.status_code == 200
        worst = max(worst, time.monotonic() - t0)
        rounds += 1
        job = httpx.get(f"{url}/jobs/{heavy.json()['job']['id']}", headers=auth("writer")).json()
        if job["status"] not in ("queued", "running"):
            break
    assert job["status"] == "done" and rounds > 3, (job, rounds)
    for t in [*droppers, slow]:
        t.join()
    assert worst < 5, worst
    assert dropped, "every upload finished within 0.3 s: nothing was abandoned"
    # every abandoned upload ends (cancelled, or done if it finished first); a cancelled one stored nothing
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = [j for j in httpx.get(f"{url}/jobs", headers=auth("admin")).json()
                if j["files"] and j["files"][0]["file_name"].startswith("abandoned-")]
        if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
            break
        time.sleep(0.3)
    assert any(j["status"] == "cancelled" for j in jobs), [(j["status"], j["files"]) for j in jobs]
    stored = {d["file_name"] for d in httpx.get(f"{url}/collections/alpha/documents", headers=auth("reader")).json()["documents"]
              if d["status"] == "done"}
    for j in jobs:
        name = j["files"][0]["file_name"]
        assert (name in stored) == (j["files"][0]["status"] == "ok"), j


def test_an_upload_can_answer_at_once_with_a_job(secure):
    r = upload(secure, "alpha", "later.txt", b"Andesite is an intermediate volcanic rock.", wait=0)
    assert r.status_code == 202 and r.headers["location"].startswith("/jobs/")
    job = wait_job(secure, r.json()["job"]["id"])
    assert job["status"] == "done" and job["files"][0]["status"] == "ok"


# -- 4. renders and frames are checked before they are decoded ---------------------------------
def test_a_tiff_with_a_huge_second_frame_is_refused(secure):
    r = upload(secure, "alpha", "scan.tif", tiff_with_huge_second_frame())
    assert r.status_code == 422 and "frame 2" in r.json()["reason"], r.text


def test_a_huge_page_renders_within_the_pixel_limit(tmp_path):
    pdf = tmp_path / "poster.pdf"
    pdf.write_bytes(huge_page_pdf())
    assert pdf.stat().st_size < 1000
    # ingested with OCR (the page is a scan), measured by a wrapper: its largest descendant's peak memory
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.stdout, r.stderr)")
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "MMRAG_OCR_ENGINE": "rapidocr", "MMRAG_PARSE_WORKERS": "1"}
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "mmrag", "ingest", str(pdf), "-c", "p",
                          "--data-dir", str(tmp_path / "data"), "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    code, peak_kb = out.stdout.split("\n")[0].split()
    assert int(peak_kb) < 1_500_000, out.stdout  # 14,400 pt at 200 dpi would be 1.6 Gpx; capped, 16 Mpx
    assert "no extractable content" in out.stdout or code == "0", out.stdout


# -- 6. keys have scopes; replacing is explicit; empty filters mean nothing ---------------------
def test_keys_see_only_their_collections(secure):
    url = secure["url"]
    r = upload(secure, "beta", "beta.txt", b"Rhyolite is rich in silica.", who="beta")
    assert r.status_code == 201
    beta_doc = r.json()["document_id"]
    assert upload(secure, "beta", "x.txt", b"x", who="writer").status_code == 403
    assert upload(secure, "alpha", "x.txt", b"x", who="reader").status_code == 403
    assert httpx.get(f"{url}/collections").status_code == 401
    assert {c["name"] for c in httpx.get(f"{url}/collections", headers=auth("reader")).json()} == {"alpha"}
    assert {c["name"] for c in httpx.get(f"{url}/collections", headers=auth("admin")).json()} >= {"alpha", "beta"}
    q = {"query": "rhyolite silica", "collection": "beta", "generate": False}
    assert httpx.post(f"{url}/query", json=q, headers=auth("reader")).status_code == 403
    assert httpx.post(f"{url}/query", json=q, headers=auth("beta")).status_code == 200
    for path in (f"/documents/{beta_doc}", f"/documents/{beta_doc}/units"):
        assert httpx.get(url + path, headers=auth("writer")).status_code == 404
    assert httpx.delete(f"{url}/documents/{beta_doc}", headers=auth("writer")).status_code == 404
    assert httpx.delete(f"{url}/collections/beta", headers=auth("writer")).status_code == 403
    assert httpx.delete(f"{url}/collections/alpha", headers=auth("writer")).status_code == 403  # write is not manage
    beta_jobs = {j["id"] for j in httpx.get(f"{url}/jobs", headers=auth("beta")).json()}
    alpha_jobs = {j["id"] for j in httpx.get(f"{url}/jobs", headers=auth("reader")).json()}
    assert beta_jobs and alpha_jobs and not beta_jobs & alpha_jobs
    assert httpx.get(f"{url}/jobs/{next(iter(beta_jobs))}", headers=auth("reader")).status_code == 404
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/metrics", headers=auth("reader")).status_code == 401
    assert httpx.get(f"{url}/metrics", headers=auth("admin")).status_code == 200
    assert httpx.get(f"{url}/docs").status_code == 401 and httpx.get(f"{url}/openapi.json").status_code == 401
    assert httpx.get(f"{url}/openapi.json", headers=auth("reader")).status_code == 200


def test_replacing_a_document_by_name_is_explicit(secure):
    first = upload(secure, "alpha", "manual.txt", b"Clean the panels twice a year.")
    assert first.status_code == 201
    other = upload(secure, "alpha", "manual.txt", b"Clean the panels every month.")
    assert other.status_code == 409 and "replace=true" in other.json()["detail"]
    replaced = upload(secure, "alpha", "manual.txt", b"Clean the panels every month.", replace="true")
    assert replaced.status_code == 201 and replaced.json()["document_id"] == first.json()["document_id"]
    got = units(secure, first.json()["document_id"])
    assert "every month" in got[0]["text"]


def test_empty_filter_lists_match_nothing(secure):
    url = secure["url"]
    base = {"query": "basalt lava", "collection": "alpha", "generate": False}
    assert httpx.post(f"{url}/query", json=base, headers=auth("reader")).json()["citations"]
    for filters in ({"document_ids": []}, {"types": []}):
        r = httpx.post(f"{url}/query", json={**base, "filters": filters}, headers=auth("reader"))
        assert r.status_code == 200 and r.json()["citations"] == [], filters


# -- 7. an LLM that trickles or floods is cut off ----------------------------------------------
def test_a_trickling_llm_meets_the_deadline(secure, llm_server):
    set_mode(llm_server, "trickle")
    try:
        t0 = time.monotonic()
        r = httpx.post(f"{secure['url']}/query", json={"query": "basalt", "collection": "alpha"}, headers=auth("reader"), timeout=60)
        assert r.status_code == 504 and "MMRAG_LLM_DEADLINE_S" in r.json()["detail"], r.text
        assert time.monotonic() - t0 < 15
    finally:
        set_mode(llm_server, "ok")


@pytest.mark.parametrize("streamed", [False, True])
def test_a_client_that_leaves_stops_the_llm_call(secure, llm_server, streamed):
    set_mode(llm_server, "trickle")
    try:
        body = {"query": "basalt", "collection": "alpha", "stream": streamed}
        if streamed:
            with httpx.stream("POST", f"{secure['url']}/query", json=body, headers=auth("reader"), timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith("event: citations"):
                        break
        else:
            with pytest.raises(httpx.TimeoutException):
                httpx.post(f"{secure['url']}/query", json=body, headers=auth("reader"), timeout=1.5)
        left = time.time()
        deadline = time.monotonic() + 6  # well before MMRAG_LLM_DEADLINE_S (8 s) would end it
        state = {}
        while time.monotonic() < deadline:
            state = httpx.get(f"{llm_server}/last").json()
            if state["hung_up_at"]:
                break
            time.sleep(0.2)
        assert state["hung_up_at"] and state["hung_up_at"] - left < 5, state
    finally:
        set_mode(llm_server, "ok")


def test_null_and_oversized_llm_answers_are_clear(secure, llm_server):
    url = secure["url"]
    body = {"query": "basalt", "collection": "alpha"}
    try:
        set_mode(llm_server, "null")
        r = httpx.post(f"{url}/query", json=body, headers=auth("reader"), timeout=30)
        assert r.status_code == 502 and "no answer text" in r.json()["detail"]
        set_mode(llm_server, "huge")
        r = httpx.post(f"{url}/query", json=body, headers=auth("reader"), timeout=30)
        assert r.status_code == 502 and "MMRAG_LLM_MAX_ANSWER_CHARS" in r.json()["detail"]
        text, event = "", None
        with httpx.stream("POST", f"{url}/query", json={**body, "stream": True}, headers=auth("reader"), timeout=30) as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "token":
                    text += json.loads(line[5:])["text"]
        assert 0 < len(text) <= 5000
    finally:
        set_mode(llm_server, "ok")


# -- should-fix: clear 4xx for odd input ------------------------------------------------------
def test_odd_input_gets_clear_client_errors(secure):
    url = secure["url"]
    raw = b'{"query": "\\ud800 lava", "collection": "alpha"}'
    r = httpx.post(f"{url}/query", content=raw, headers={**auth("reader"), "content-type": "application/json"})
    assert r.status_code == 422 and "unicode" in r.text  # not a 500
    r = httpx.post(f"{url}/query", json={"query": "lava", "collection": "alpha", "filters": {"document_ids": [2**70]}},
                   headers=auth("reader"))
    assert r.status_code == 422
    assert httpx.get(f"{url}/units/{2**70}/image", headers=auth("reader")).status_code == 422
    long_name = "é" * 290 + "\u202e" + ".txt"
    r = upload(secure, "alpha", long_name, b"Lapilli are small volcanic fragments.")
    assert r.status_code == 201, r.text
    shown = r.json()["file_name"]
    assert len(shown) <= 200 and "\u202e" not in shown and shown.endswith(".txt")
    r = httpx.post(f"{url}/collections/{'c' * 300}/documents", files={"file": ("a.txt", b"x")}, headers=auth("admin"))
    assert r.status_code == 422


def test_a_chunked_upload_is_refused_at_the_limit_not_spooled(secure):
    host, port = secure["url"].removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (f"POST /collections/alpha/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEYS['writer']}\r\n"
            "Content-Type: multipart/form-data; boundary=BOUND\r\nTransfer-Encoding: chunked\r\n\r\n")
    part = b'--BOUND\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
    sock.sendall(head.encode() + f"{len(part):x}\r\n".encode() + part + b"\r\n")
    chunk = b"x" * 2**20
    sent, answer = 0, b""
    sock.settimeout(0.05)
    try:
        while sent < 60 * 2**20:
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            except OSError:
                break
            try:
                answer = sock.recv(4096)
                if answer:
                    break
            except TimeoutError:
                pass
        sock.settimeout(10)
        answer = answer or sock.recv(4096)
    finally:
        sock.close()
    assert b" 413 " in answer.split(b"\r\n")[0], answer[:200]
    assert sent < 20 * 2**20  # the limit is 5 MB: the server stopped reading near it


def test_deleting_a_collection_while_it_ingests_is_clean(secure):
    url = secure["url"]
    files = [("files", (f"d{i}.txt", f"Caldera {i} collapsed after the eruption of year {1500 + i}.".encode())) for i in range(12)]
    job = httpx.post(f"{url}/collections/beta-tmp/jobs/upload", files=files, headers=auth("beta"), timeout=60).json()
    codes = set()
    while True:
        codes.add(httpx.delete(f"{url}/collections/beta-tmp", headers=auth("beta"), timeout=60).status_code)
        state = httpx.get(f"{url}/jobs/{job['id']}", headers=auth("beta")).json()
        if state["status"] not in ("queued", "running"):
            break
    assert codes <= {204, 404, 503}, codes  # never a 500 (FOREIGN KEY, "Directory not empty")
    assert state["status"] == "done" and state["error"] is None, state
    assert httpx.delete(f"{url}/collections/beta-tmp", headers=auth("beta")).status_code in (204, 404)
    names = {c["name"] for c in httpx.get(f"{url}/collections", headers=auth("admin")).json()}
    assert "beta-tmp" not in names
    ids = {str(c["id"]) for c in httpx.get(f"{url}/collections", headers=auth("admin")).json()}
    folders = {p.name for p in (secure["cwd"] / "data" / "indexes").iterdir()}
    assert folders <= ids, folders - ids  # no index folder outlives its collection
