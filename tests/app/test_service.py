"""The REST service, over real HTTP, with a real LLM server process behind it."""

import hashlib
import io
import json

import httpx
import pytest
from PIL import Image

from tests.app.conftest import set_mode
from tests.fixturegen import OCR_WORDS, TABLE


def post_query(base, **body):
    return httpx.post(f"{base}/query", json={"collection": "docs", **body}, timeout=60)


def test_health_ready_metrics_and_openapi(service):
    assert httpx.get(f"{service}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service}/readyz").json()["status"] == "ready"
    assert "/query" in httpx.get(f"{service}/openapi.json").json()["paths"]
    post_query(service, query="iron", generate=False)
    metrics = httpx.get(f"{service}/metrics").text
    assert 'mmrag_http_requests_total{method="POST",route="/query",status="200"}' in metrics


def test_query_answers_with_citations_from_the_llm(service, llm_server):
    set_mode(llm_server, "ok")
    r = post_query(service, query="What is the iron content at Vesuvius?", top_k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"]["kind"] == "generated" and "[1]" in body["answer"]["text"]
    first = body["citations"][0]
    assert first["type"] == "table" and first["file_name"] in ("survey.pdf", "survey.docx") and "455" in first["html"]
    assert set(body["timings_ms"]) >= {"bm25_ms", "dense_ms", "total_ms", "generate_ms"}
    # the prompt delimits sources as data and numbers them
    sent = httpx.get(f"{llm_server}/last").json()["last"]["messages"]
    assert sent[0]["role"] == "system" and '<source id="1"' in sent[1]["content"]


def test_a_citation_whose_source_does_not_say_it_is_moved_to_the_one_that_does(service, llm_server):
    set_mode(llm_server, "miscite")  # the second source's sentence, cited as [1]
    try:
        r = post_query(service, query="What is the iron content at Vesuvius?", top_k=3)
    finally:
        set_mode(llm_server, "ok")
    assert r.status_code == 200, r.text
    answer = r.json()["answer"]
    assert "[1]" not in answer["text"] and answer["citation_fixes"], answer
    fix = answer["citation_fixes"][0]
    assert fix["cited"] == 1 and fix["support"] < 0.34
    if fix["now"] is not None:
        assert fix["now"] > 1 and answer["text"].endswith(f"[{fix['now']}]")


def test_stream_sends_citations_then_tokens_then_done(service, llm_server):
    set_mode(llm_server, "ok")
    with httpx.stream("POST", f"{service}/query?stream=true", json={"query": "pH of Etna north", "collection": "docs"}, timeout=60) as r:
        events = [line.split(": ", 1)[1] for line in r.iter_lines() if line.startswith("event: ")]
    assert events[0] == "citations" and events[-1] == "done" and events.count("token") > 3
    with httpx.stream("POST", f"{service}/query?stream=true", json={"query": "pH of Etna north", "collection": "docs"}, timeout=60) as r:
        done = json.loads([line for line in r.iter_lines() if line.startswith("data: ")][-1][6:])
    assert done["backend"] == "openai" and "[1]" in done["answer"] and isinstance(done["citation_fixes"], list)


@pytest.mark.parametrize("mode,status,words", [("slow", 504, "timed out"), ("error500", 502, "HTTP 500"), ("malformed", 502, "malformed JSON")])
def test_llm_failures_answer_502_or_504_naming_the_backend(service, llm_server, mode, status, words):
    set_mode(llm_server, mode)
    r = post_query(service, query="pH of Etna north")
    assert r.status_code == status and "openai" in r.json()["detail"] and words in r.json()["detail"]
    if mode == "error500":
        assert httpx.get(f"{llm_server}/last").json()["calls"] == 2  # one retry, then give up
    set_mode(llm_server, "ok")
    assert post_query(service, query="pH of Etna north").status_code == 200  # the server stays up


def test_malformed_stream_line_ends_with_an_error_event(service, llm_server):
    set_mode(llm_server, "malformed")
    with httpx.stream("POST", f"{service}/query", json={"query": "pH", "collection": "docs", "stream": True}, timeout=60) as r:
        lines = list(r.iter_lines())
    set_mode(llm_server, "ok")
    errors = [json.loads(b.split(": ", 1)[1]) for a, b in zip(lines, lines[1:]) if a == "event: error"]
    assert errors and "malformed stream line" in errors[0]["detail"]


def test_image_filter_and_image_url(service):
    r = post_query(service, query="lighthouse keeper sign", generate=False, filters={"types": ["image"]})
    cites = r.json()["citations"]
    assert cites and all(c["type"] == "image" for c in cites)
    assert any(OCR_WORDS in c["snippet"] for c in cites)
    img = httpx.get(service + cites[0]["image_url"])
    assert img.status_code == 200 and img.headers["content-type"].startswith("image/")


def test_chinese_query_finds_the_chinese_document(service):
    body = post_query(service, query="三峡大坝在哪里", generate=False).json()
    assert body["citations"][0]["file_name"] == "yangtze.txt"


def test_upload_list_delete(service, fixtures):
    files = {"file": ("notes.txt", fixtures["txt"].read_bytes())}
    r = httpx.post(f"{service}/collections/up/documents", files=files, timeout=120)
    assert r.status_code == 201, r.text
    doc_id = r.json()["document_id"]
    assert httpx.post(f"{service}/collections/up/documents", files=files, timeout=60).status_code == 409
    bad = httpx.post(f"{service}/collections/up/documents", files={"file": ("x.pdf", fixtures["encrypted_pdf"].read_bytes())}, timeout=60)
    assert bad.status_code == 422 and "encrypted" in bad.json()["reason"]
    names = [d["file_name"] for d in httpx.get(f"{service}/collections/up/documents").json()["documents"]]
    assert names == ["notes.txt", "x.pdf"]
    assert httpx.delete(f"{service}/documents/{doc_id}").status_code == 204
    assert httpx.get(f"{service}/documents/{doc_id}").status_code == 404
    r = httpx.post(f"{service}/query", json={"query": "basalt", "collection": "up", "generate": False})
    assert r.json()["citations"] == []


def test_errors_are_clear(service):
    assert httpx.post(f"{service}/query", json={"query": "x", "collection": "nope"}).status_code == 404
    r = httpx.post(f"{service}/query", json={"query": "", "collection": "docs"})
    assert r.status_code == 422
    assert httpx.get(f"{service}/units/999999/image").status_code == 404


def test_unknown_query_fields_are_refused_not_ignored(service):
    """A misspelt filter must not quietly return unfiltered results."""
    r = post_query(service, query="lighthouse", generate=False, filters={"modality": ["image"]})
    assert r.status_code == 422 and "modality" in r.text
    r = post_query(service, query="lighthouse", generate=False, topk=3)
    assert r.status_code == 422 and "topk" in r.text


def test_rerank_can_be_switched_off_per_request_and_every_stage_is_timed(service):
    ranked = post_query(service, query="What is the iron content at Vesuvius?", generate=False).json()
    fused = post_query(service, query="What is the iron content at Vesuvius?", generate=False, rerank=False).json()
    assert "cross_encoder_ms" in ranked["timings_ms"] and "cross_encoder_ms" not in fused["timings_ms"]
    assert any("cross_encoder" in c["features"] for c in ranked["citations"])
    assert not any("cross_encoder" in c["features"] for c in fused["citations"])
    for body in (ranked, fused):
        assert {"bm25_ms", "dense_ms", "features_ms", "total_ms"} <= set(body["timings_ms"])


def test_table_rows_survive_to_the_citation(service):
    body = post_query(service, query="Iron mg/kg Etna south", generate=False, filters={"types": ["table"]}).json()
    assert body["citations"][0]["html"].count("<tr>") == len(TABLE)


def test_api_keys_are_checked_when_configured(tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from mmrag.settings import Settings

    key = "s3cret-key"
    app = create_app(Settings(data_dir=tmp_path, api_keys=hashlib.sha256(key.encode()).hexdigest()), warm=False)
    with TestClient(app) as client:
        assert client.get("/collections").status_code == 401
        assert client.get("/collections", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/collections", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/collections", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no key


def test_batch_job_from_uploads_reports_progress_and_failures(service, fixtures):
    import time

    files = [("files", ("a.md", fixtures["md"].read_bytes())), ("files", ("b.pdf", fixtures["truncated_pdf"].read_bytes()))]
    r = httpx.post(f"{service}/collections/jobs/jobs/upload", files=files, timeout=60)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    for _ in range(240):
        job = httpx.get(f"{service}/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done" and (job["ok"], job["failed"], job["total"]) == (1, 1, 2)
    assert "truncated" in job["failures"][0]["reason"]
    names = [d["file_name"] for d in httpx.get(f"{service}/collections/jobs/documents").json()["documents"]]
    assert any(n.endswith("a.md") for n in names)


def test_server_side_paths_need_an_allowed_root(service):
    r = httpx.post(f"{service}/collections/x/jobs", json={"paths": ["/etc"]})
    assert r.status_code == 403 and "MMRAG_INGEST_ROOTS" in r.json()["detail"]


def test_eval_against_the_running_service(service, tmp_path):
    import subprocess
    import sys

    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(json.dumps({"id": "q1", "question": "What is the iron content at Vesuvius?", "answers": ["455"],
                                   "relevant_documents": ["survey.pdf", "survey.docx"]}) + "\n")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(dataset), "--collection", "docs", "--url", service,
                          "--out", str(out), "--no-generate", "--no-progress"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recall@10"] == 1.0 and metrics["mrr@10"] == 1.0 and metrics["bleu"] is None


def test_document_units_give_image_urls_not_server_paths(service):
    docs = httpx.get(f"{service}/collections/docs/documents").json()["documents"]
    docx = next(d for d in docs if d["file_name"] == "survey.docx")
    units = httpx.get(f"{service}/documents/{docx['id']}/units").json()["units"]
    images = [u for u in units if u["type"] == "image"]
    assert images and all("image_path" not in u and u["image_url"].startswith("/units/") for u in images)
    assert httpx.get(service + images[0]["image_url"]).status_code == 200


def test_caption_less_drawings_are_found_by_text_through_query_and_eval(service, tmp_path):
    """Drawings uploaded under neutral names, with no caption or text in them: only the image-text model can find them."""
    import subprocess
    import sys

    from tests.mmrag.test_image_model import CAPTIONS, IMAGES

    names = {}
    for k, (name, caption) in enumerate(CAPTIONS.items()):
        neutral = f"IMG_{k:04d}.png"
        r = httpx.post(f"{service}/collections/pictures/documents", files={"file": (neutral, (IMAGES / name).read_bytes())}, timeout=120)
        assert r.status_code == 201, r.text
        names[caption] = neutral
    for caption, neutral in names.items():
        r = httpx.post(f"{service}/query", json={"query": caption, "collection": "pictures", "generate": False,
                                                 "filters": {"types": ["image"]}}, timeout=60)
        cites = r.json()["citations"]
        assert cites[0]["file_name"] == neutral and cites[0]["type"] == "image", (caption, cites)
    dataset = tmp_path / "pictures.jsonl"
    dataset.write_text("".join(json.dumps({"id": n, "question": c, "answers": [], "relevant_documents": [n]}) + "\n"
                               for c, n in names.items()))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(dataset), "--collection", "pictures", "--url", service,
                          "--types", "image", "--out", str(out), "--no-generate", "--no-progress"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recall@1"] == 1.0 and metrics["by_modality"]["image"]["recall@1"] == 1.0


def _png(r) -> Image.Image:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text[:200]
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def test_a_citation_links_its_page_with_the_region_boxed_and_the_region_cut_out(service):
    cite = post_query(service, query="Iron mg/kg Etna south", generate=False, filters={"types": ["table"]}).json()["citations"][0]
    assert cite["file_name"] == "survey.pdf" and cite["page"] == 1
    assert cite["page_url"] == f"/documents/{cite['document_id']}/pages/1.png?highlight={cite['unit_id']}"
    plain = _png(httpx.get(f"{service}/documents/{cite['document_id']}/pages/1.png?dpi=72"))
    assert abs(plain.width - 595) <= 1 and abs(plain.height - 842) <= 1  # A4 in points at 72 dpi
    boxed = _png(httpx.get(f"{service}{cite['page_url']}&dpi=72"))
    x0, y0, x1, y1 = (round(v) for v in cite["bbox"])
    r, g, b = boxed.getpixel(((x0 + x1) // 2, y0))  # the box's top edge is drawn in orange
    assert r > 200 and 40 < g < 140 and b < 60, (r, g, b)
    assert plain.getpixel((5, 5)) == boxed.getpixel((5, 5))  # nothing drawn outside it
    crop = _png(httpx.get(service + cite["crop_url"]))
    ratio = (x1 - x0) / (y1 - y0)
    assert abs(crop.width / crop.height - ratio) < 0.25 * ratio  # the table's region, padded a little
    assert crop.width >= (x1 - x0) * 150 / 72 * 0.95


def test_page_images_refuse_clearly(service):
    docs = {d["file_name"]: d for d in httpx.get(f"{service}/collections/docs/documents").json()["documents"]}
    assert all("original_path" not in d for d in docs.values())
    pdf, docx = docs["survey.pdf"], docs["survey.docx"]
    assert pdf["pages_viewable"] and not docx["pages_viewable"]
    out_of_range = httpx.get(f"{service}/documents/{pdf['id']}/pages/9.png")
    assert out_of_range.status_code == 404 and "out of range" in out_of_range.json()["detail"]
    not_pdf = httpx.get(f"{service}/documents/{docx['id']}/pages/1.png")
    assert not_pdf.status_code == 404 and "PDFs and images" in not_pdf.json()["detail"]
    docx_unit = httpx.get(f"{service}/documents/{docx['id']}/units").json()["units"][0]
    assert docx_unit["page_url"] is None
    foreign = httpx.get(f"{service}/documents/{pdf['id']}/pages/1.png?highlight={docx_unit['id']}")
    assert foreign.status_code == 404 and "has no unit" in foreign.json()["detail"]
    sign = docs["sign.png"]  # an image document's page is the image itself
    frame = next(u for u in httpx.get(f"{service}/documents/{sign['id']}/units").json()["units"] if u["type"] == "image")
    page = _png(httpx.get(f"{service}/documents/{sign['id']}/pages/1.png"))
    assert page.size == _png(httpx.get(service + frame["crop_url"])).size == (frame["bbox"][2], frame["bbox"][3])


def test_warm_up_loads_what_the_first_query_would(tmp_path, monkeypatch):
    # the first /query on the samples took ~0.8 s against ~0.1 s for the next: jieba's dictionary and the
    # question session of the text model were loaded on first use
    import indexes.tokenize as tokenize_module
    from app.services import Services
    from mmrag.settings import Settings

    monkeypatch.setattr(tokenize_module, "_jieba", None)
    services = Services(Settings(data_dir=tmp_path))
    services.text._sessions.clear()  # the process's shared text model: other tests may have made them
    services.warm_up()
    assert tokenize_module._jieba is not None
    assert ("query" in services.text.int8) in services.text._sessions  # the session questions use
