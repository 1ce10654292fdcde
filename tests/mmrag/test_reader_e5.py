"""The multilingual reader (e5-small and its packaged delta): character ranges through e5's normaliser,
windows, the ONNX export's scores, and Chinese answers through the reader generator."""

import numpy as np
import pytest

from app.generation.base import Source
from app.generation.extractive import ExtractiveGenerator
from app.generation.reader import ReaderGenerator
from mmrag.embedding.e5_onnx import E5File, E5Tokenizer, weight_file
from mmrag.reader_e5 import E5SpanReader, build_model, windows

MANUAL_ZH = "太陽能板在積塵時發電量會下降。面板應每年清洗兩次，最好在春季和秋季。逆變器大約在十二年後更換。"


@pytest.fixture(scope="module")
def e5():
    f = E5File.read(weight_file())
    return f, E5Tokenizer(f)


@pytest.fixture(scope="module")
def reader():
    from tests.conftest import MODEL_CACHE

    return E5SpanReader(MODEL_CACHE, int8=True)  # as served


def test_piece_ranges_point_into_the_original_text(e5):
    _, tok = e5
    # full-width letters and digits are folded and runs of spaces collapsed by the normaliser: ranges still
    # point at the characters as given
    text = "台灣的首都是台北市。  Ｈｅｌｌｏ\u00a0world, ２０２４年"
    ids, spans = tok.pieces(text)
    assert ids == tok.ids([text])[0]
    pieces = [text[a:b] for a, b in spans if b > a]
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "").replace("\u00a0", "")
    assert all(0 <= a <= b <= len(text) for a, b in spans)


def test_a_long_passage_is_read_in_overlapping_windows(e5):
    f, tok = e5
    passage = "。".join(f"第{i}行記錄了工廠平常的一天" for i in range(200))
    rows, offsets, owner, seq = windows(tok, f, "逆變器何時更換？", [passage, "短文。"], max_length=128, stride=32)
    first = [k for k, o in enumerate(owner) if o == 0]
    assert len(first) > 3 and owner[-1] == 1 and all(len(r) <= 128 for r in rows)
    covered = [offsets[w][k] for w in first for k in range(len(rows[w])) if seq[w][k] == 1]
    assert max(b for _, b in covered) == len(passage)  # the last window reaches the end
    # consecutive windows share their edges
    ends = [max(offsets[w][k][1] for k in range(len(rows[w])) if seq[w][k] == 1) for w in first]
    starts = [min(offsets[w][k][0] for k in range(len(rows[w])) if seq[w][k] == 1) for w in first]
    assert all(s < e for s, e in zip(starts[1:], ends[:-1]))


def test_reads_a_chinese_answer(reader):
    span = reader.read("面板應該多久清洗一次？", [MANUAL_ZH])[0]
    assert "兩次" in MANUAL_ZH[span.start:span.end] and span.margin > 0


def test_a_question_the_passage_does_not_answer_scores_below_one_it_does(reader):
    asked = reader.read("逆變器何時更換？", [MANUAL_ZH])[0]
    unrelated = reader.read("一九九八年世界盃足球賽的冠軍是誰？", [MANUAL_ZH])[0]
    assert asked.margin > unrelated.margin + 3


def test_onnx_keeps_the_torch_scores(reader, e5):
    import torch

    f, _ = e5
    enc, _, _, _ = reader._encode("逆變器何時更換？", [MANUAL_ZH])
    onnx_start, onnx_end = E5SpanReader(reader_cache(), int8=False)._logits(enc)
    with torch.no_grad():
        start, end = build_model(f)(torch.from_numpy(enc["words"]), torch.from_numpy(enc["mask"]))
    assert np.allclose(onnx_start, start.numpy(), atol=1e-3) and np.allclose(onnx_end, end.numpy(), atol=1e-3)


def reader_cache():
    from tests.conftest import MODEL_CACHE

    return MODEL_CACHE


def make_generator(reader, text_embedder):
    from mmrag.reader import SpanReader
    from mmrag.settings import Settings

    s = Settings()
    gen = ReaderGenerator(SpanReader(cache_dir=reader_cache()), ExtractiveGenerator(text_embedder), s.reader_threshold,
                          s.reader_sources, threshold_alone=s.reader_threshold_alone)
    gen.multilingual = lambda: reader
    gen.wordless = (s.reader_multilingual_sources, s.reader_multilingual_rank_penalty, s.reader_multilingual_threshold)
    return gen


def test_chinese_questions_get_a_span_with_its_sentence_and_citation(reader, text_embedder):
    gen = make_generator(reader, text_embedder)
    sources = [Source(1, "咖啡豆應在烘焙後兩週內使用。", "咖啡.md", "text"), Source(2, MANUAL_ZH, "手冊.pdf p.1", "text")]
    answer = gen.generate("面板應該多久清洗一次？", sources)
    assert answer.kind == "reader" and answer.model == "packaged:reader-e5"
    assert "兩次" in answer.text and answer.text.endswith("[2]") and len(answer.text) < 20
    assert answer.support == "面板應每年清洗兩次，最好在春季和秋季。"


def test_an_english_question_over_chinese_sources_is_read_by_the_multilingual_reader(reader, text_embedder):
    gen = make_generator(reader, text_embedder)
    answer = gen.generate("When is the inverter replaced?", [Source(1, MANUAL_ZH, "手冊.pdf p.1", "text")])
    assert answer.model == "packaged:reader-e5" and answer.text.endswith("[1]")
