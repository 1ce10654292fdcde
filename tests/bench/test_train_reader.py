"""bench.train_reader: answer spans map to the right tokens, windows without the answer point at
[CLS], and the best span decodes back to the answer's characters."""

from transformers import AutoTokenizer

from bench.train_reader import best_span, features
from mmrag import reranker


def _example(n_filler: int) -> dict:
    context = "The lighthouse stands on the northern cape. " * n_filler + "It was first lit in 1871 by the harbour board."
    start = context.index("1871")
    return {"question": "When was the lighthouse first lit?", "context": context, "answers": [{"text": "1871", "answer_start": start}]}


def test_answer_positions_and_windows():
    tok = AutoTokenizer.from_pretrained(str(reranker.base_model_path()))
    short, long = _example(1), _example(40)  # the long one needs several windows of 64 tokens
    f = features(tok, [short, long], max_length=64, stride=16)
    sample = [0] + [1] * (len(f["start"]) - 1)
    assert len(f["start"]) > 3
    for i, (s, e) in enumerate(zip(f["start"], f["end"])):
        if s:
            assert tok.decode(f["input_ids"][i][s:e + 1]).strip() == "1871"
    assert f["start"][0] > 0  # the short passage holds its answer in its one window
    assert sum(1 for i, s in enumerate(f["start"]) if sample[i] == 1 and s > 0) >= 1
    assert sum(1 for i, s in enumerate(f["start"]) if sample[i] == 1 and s == 0) >= 1  # windows without it: [CLS]


def test_best_span_decodes_to_characters():
    tok = AutoTokenizer.from_pretrained(str(reranker.base_model_path()))
    ex = _example(1)
    enc = tok(ex["question"], ex["context"], return_offsets_mapping=True)
    seq = enc.sequence_ids()
    target = next(k for k, o in enumerate(enc["offset_mapping"]) if seq[k] == 1 and ex["context"][o[0]:o[1]] == "1871")
    start = [0.0] * len(seq)
    end = [0.0] * len(seq)
    start[target], end[target] = 5.0, 5.0
    start[0] = end[0] = 9.0  # [CLS] is not in the context: never an answer span
    score, a, b = best_span(start, end, enc["offset_mapping"], seq)
    assert ex["context"][a:b] == "1871" and score == 10.0


def test_unanswerable_pairs_come_from_the_article_without_the_answer():
    import random

    from bench.train_reader import unanswerable

    texts = ["It was first lit in 1871.", "The keeper's house has four rooms.", "Ships pass the cape at night."]
    examples = [{"question": "When was it first lit?", "context": texts[0], "article": "a",
                 "answers": [{"text": "1871", "answer_start": texts[0].index("1871")}]},
                {"question": "How many rooms?", "context": texts[1], "article": "a",
                 "answers": [{"text": "four", "answer_start": texts[1].index("four")}]},
                {"question": "Where else?", "context": "Elsewhere, 1871 too.", "article": "b",
                 "answers": [{"text": "1871", "answer_start": 11}]}]
    examples.append({**examples[0], "context": texts[2]})  # the article's third passage, seen through another question
    negs = unanswerable(examples, 1.0, random.Random(0))
    assert negs and all(n["answers"] == [] and n["article"] == "a" for n in negs)  # article b has no other passage
    assert all(n["context"] != e["context"] for n, e in zip(negs, examples))
    assert not any("1871" in n["context"] for n in negs if n["question"] == "When was it first lit?")
    tok = AutoTokenizer.from_pretrained(str(reranker.base_model_path()))
    f = features(tok, negs, max_length=64, stride=16)
    assert (f["start"] == 0).all() and (f["end"] == 0).all()  # both ends on [CLS]


def test_e5_reader_labels_point_at_the_answer_in_chinese_windows():
    from bench.train_reader_e5 import features as e5_features
    from mmrag.embedding.e5_onnx import E5File, E5Tokenizer, weight_file
    from mmrag.reader_e5 import windows

    f = E5File.read(weight_file())
    tok = E5Tokenizer(f)
    context = "燈塔位於北方的海角上。" * 30 + "它於1871年由港務局首次點亮。"
    at = context.index("1871年")
    ex = {"question": "燈塔何時首次點亮？", "context": context, "answers": [{"text": "1871年", "answer_start": at}]}
    rows, starts, ends = e5_features(tok, f, [ex], max_length=96, stride=32)
    _, offsets, _, _ = windows(tok, f, ex["question"], [context], 96, 32)
    assert len(rows) > 3 and starts[0] == 0 and starts[-1] > 0  # only the last window holds the answer
    w = len(rows) - 1
    a, b = offsets[w][starts[w]][0], offsets[w][ends[w]][1]
    assert context[a:b].strip() == "1871年"
