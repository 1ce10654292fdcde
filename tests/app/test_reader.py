"""The packaged readers, with their real weights: spans, table cells, abstention, the ONNX export's
scores, and the default service's answers."""

import numpy as np
import pytest

from app.generation.base import Source
from app.generation.extractive import ExtractiveGenerator
from app.generation.reader import NO_ANSWER, ReaderGenerator, reading_text, support_sentence
from mmrag.reader import SpanReader

MANUAL = ("Solar panels lose output when they are dusty. The panels should be cleaned twice a year, ideally in "
          "spring and autumn. The inverter is replaced after about twelve years.")
MANUAL_ZH = "太陽能板在積塵時發電量會下降。面板應每年清洗兩次，最好在春季和秋季。逆變器大約在十二年後更換。"
TABLE = "Task | Interval | Who\nVisual inspection | Every 3 months | Owner\nPanel cleaning | Twice a year | Contractor"
READERS = ["packaged:reader-e5", "packaged:reader-minilm"]


@pytest.fixture(scope="module")
def minilm():
    from tests.conftest import MODEL_CACHE

    return SpanReader(cache_dir=MODEL_CACHE)  # exported once per delta (its hash names the folder)


@pytest.fixture(scope="module", params=READERS)
def reader(request):
    """Each packaged reader, int8 as served."""
    from mmrag.reader_e5 import open_reader
    from tests.conftest import MODEL_CACHE

    return open_reader(request.param, MODEL_CACHE, int8=True)


@pytest.fixture(scope="module")
def generator(text_embedder):
    """The shipped reader and abstention setting, as the factory builds them, reading three sources; these
    sources carry no reranker score, so the margin alone decides."""
    from app.generation.factory import make_generator
    from mmrag.settings import Settings
    from tests.conftest import MODEL_CACHE

    return make_generator(Settings(cache_dir=MODEL_CACHE, reader_sources=3), text_embedder)


def test_reads_the_span_and_its_sentence(generator):
    answer = generator.generate("How often should the panels be cleaned?", [Source(1, MANUAL, "manual.pdf p.2", "text")])
    # where the span ends is the model's call: it reads "twice" (fp32 and as served), "twice a year" all-int8
    assert answer.kind == "reader" and answer.text.lower().startswith("twice") and answer.text.endswith("[1]")
    assert len(answer.text) < len("twice a year, ideally in spring and autumn")
    assert answer.support == "The panels should be cleaned twice a year, ideally in spring and autumn."
    assert answer.confidence > 0


def test_answers_from_a_table_with_the_cell_and_its_headers(generator):
    sources = [Source(1, "Expected production is 10,400 kWh a year.", "guide.pdf p.2", "text"),
               Source(2, TABLE, "guide.pdf p.1 (table)", "table")]
    answer = generator.generate("Who does the panel cleaning?", sources)
    assert answer.kind == "reader" and answer.cell == {"value": "Contractor", "row": "Panel cleaning", "column": "Who",
                                                       "source": 2}
    assert answer.text == "Contractor (Panel cleaning, Who) [2]"
    assert answer.support.startswith("Task: Panel cleaning")


def test_a_table_answer_stays_inside_one_cell(reader, minilm):
    text, cells = reading_text(Source(1, TABLE, "t", "table"))
    free = minilm.read("Who does the panel cleaning?", [text])[0]
    assert "\n" in text[free.start:free.end]  # left free, MiniLM runs from one row into the next
    kept = reader.read("Who does the panel cleaning?", [text], [[(c.start, c.end) for c in cells]])[0]
    assert any((c.start, c.end) == (kept.start, kept.end) for c in cells)


def test_an_unrelated_top_source_tips_the_answer_into_abstention(reader, text_embedder):
    from mmrag.settings import Settings

    s = Settings()
    gen = ReaderGenerator(reader, ExtractiveGenerator(text_embedder), s.reader_threshold, 1, 0.0, s.reader_relevance_weight,
                          s.reader_relevance_center)
    question = "How often should the panels be cleaned?"
    relevant = Source(1, MANUAL, "manual.pdf p.2", "text", features={"cross_encoder": 6.0})
    unrelated = Source(1, MANUAL, "manual.pdf p.2", "text", features={"cross_encoder": -8.0})
    assert gen.generate(question, [relevant]).kind == "reader"
    assert gen.generate(question, [unrelated]).kind == "no_answer"


def test_says_no_answer_and_cites_the_closest_evidence(reader, text_embedder):
    strict = ReaderGenerator(reader, ExtractiveGenerator(text_embedder), threshold=50.0)  # nothing clears this
    answer = strict.generate("How often should the panels be cleaned?", [Source(1, MANUAL, "manual.pdf p.2", "text")])
    assert answer.kind == "no_answer" and answer.text.startswith(NO_ANSWER) and answer.text.endswith("[1]")
    assert "twice a year" in answer.text  # the closest evidence is still shown


def test_a_question_the_passage_does_not_answer_scores_below_one_it_does(reader):
    asked = reader.read("How often should the panels be cleaned?", [MANUAL])[0]
    unrelated = reader.read("Who won the football world cup in 1998?", [MANUAL])[0]
    assert asked.margin > unrelated.margin + 3


def test_chinese_questions_get_the_extractive_sentences_without_a_multilingual_reader(minilm, text_embedder):
    generator = ReaderGenerator(minilm, ExtractiveGenerator(text_embedder), -16.0, threshold_alone=-4.0)
    answer = generator.generate("面板多久清洗一次？", [Source(1, "面板每年清洗两次。逆变器十二年后更换。", "手册.pdf p.1", "text")])
    assert answer.kind == "extractive" and "[1]" in answer.text


def test_long_passages_are_read_in_windows(reader):
    filler = " ".join(f"Line {i} of the log records an ordinary day at the plant." for i in range(60))
    span = reader.read("When is the inverter replaced?", [filler + " " + MANUAL])[0]
    assert "twelve years" in (filler + " " + MANUAL)[span.start:span.end]


def test_onnx_keeps_the_torch_scores(minilm):
    import torch

    from mmrag.reader import build_model

    question, passage = "How often should the panels be cleaned?", MANUAL
    enc = minilm.tok(question, passage, return_tensors="np")
    onnx_start, onnx_end = minilm._logits(dict(enc))
    with torch.no_grad():
        out = build_model()(**{k: torch.tensor(v) for k, v in enc.items()})
    assert np.allclose(onnx_start, out.start_logits.numpy(), atol=1e-3)
    assert np.allclose(onnx_end, out.end_logits.numpy(), atol=1e-3)


def test_the_multilingual_readers_int8_build_keeps_its_feed_forward_outputs_fp32():
    """What the int8 reader is served from: every weight matmul int8 but the ones INT8_FP32 names, and
    its logits close to the fp32 model's on a manual's passage."""
    import onnx

    from mmrag import onnx_models
    from mmrag.reader_e5 import INT8_FP32, E5SpanReader
    from tests.conftest import MODEL_CACHE

    fp32, int8 = E5SpanReader(MODEL_CACHE), E5SpanReader(MODEL_CACHE, int8=True)
    graph = onnx.load(str(onnx_models.quantized(int8.folder, INT8_FP32))).graph
    float_matmuls = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in {i.name for i in graph.initializer}]
    assert len(float_matmuls) == 12 and all(n.endswith(INT8_FP32) for n in float_matmuls)  # one per layer
    assert sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node) >= 12 * 5
    enc = fp32._encode("How often should the panels be cleaned?", [MANUAL])[0]
    (a, _), (b, _) = fp32._logits(enc), int8._logits(enc)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_reading_text_keeps_each_cell_findable():
    text, cells = reading_text(Source(1, TABLE, "t", "table"))
    assert [text[c.start:c.end] for c in cells] == [c.value for c in cells]
    assert support_sentence(text, cells[-1].start, cells[-1].end, table=True).startswith("Task: Panel cleaning")


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """mmrag serve on its defaults (the reader answers), over the bundled samples."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.app.conftest import free_port, wait_for
    from tests.conftest import MODEL_CACHE

    samples = Path(__file__).resolve().parents[2] / "samples"
    data = tmp_path_factory.mktemp("reader-server") / "data"
    env = {**os.environ, "MMRAG_IMAGE_MODEL": "none", "MMRAG_CACHE_DIR": str(MODEL_CACHE)}
    env.pop("MMRAG_LLM_BACKEND", None)
    chinese = data.parent / "太陽能板維護.md"
    chinese.write_text("# 太陽能板維護\n\n" + MANUAL_ZH + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(samples / "solar-maintenance.pdf"), str(samples / "coffee-brewing.md"),
                    "-c", "samples", "--data-dir", str(data)], env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(chinese), str(samples / "coffee-brewing.md"), "-c", "zh",
                    "--data-dir", str(data)], env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_default_service_answers_with_the_span_its_support_and_citation(default_server):
    import httpx

    body = {"query": "How often should the panels be cleaned?", "collection": "samples"}
    r = httpx.post(f"{default_server}/query", json=body, timeout=60).json()
    answer = r["answer"]
    assert answer["backend"] == "reader" and answer["kind"] == "reader"
    assert answer["text"].lower().startswith("twice a year") and len(answer["text"]) < 80  # a span, not sentences
    assert "twice a year" in answer["support"].lower() and answer["confidence"] > 0
    cited = int(answer["text"].rsplit("[", 1)[1].rstrip("]"))
    assert r["citations"][cited - 1]["file_name"] == "solar-maintenance.pdf" and r["citations"][cited - 1]["page"] == 1


def test_the_default_service_streams_the_readers_whole_answer(default_server):
    import json

    import httpx

    body = {"query": "How often should the panels be cleaned?", "collection": "samples", "stream": True}
    with httpx.stream("POST", f"{default_server}/query", json=body, timeout=60) as r:
        lines = list(r.iter_lines())
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    assert events == ["citations", "token", "done"]
    done = json.loads([line for line in lines if line.startswith("data: ")][-1][6:])
    assert done["backend"] == "reader" and done["kind"] == "reader" and done["answer"].lower().startswith("twice a year")
    assert "twice a year" in done["support"].lower()


def test_the_default_service_answers_a_chinese_question_from_the_chinese_document(default_server):
    import httpx

    body = {"query": "逆變器多久更換一次？", "collection": "zh"}
    r = httpx.post(f"{default_server}/query", json=body, timeout=60).json()
    answer = r["answer"]
    assert answer["kind"] == "reader" and answer["model"] == "packaged:reader-e5"
    assert "十二年" in answer["text"] and len(answer["text"]) < 30
    cited = int(answer["text"].rsplit("[", 1)[1].rstrip("]"))
    assert r["citations"][cited - 1]["file_name"] == "太陽能板維護.md"
