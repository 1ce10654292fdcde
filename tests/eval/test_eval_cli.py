"""``python -m eval`` end to end on a small collection: metrics, predictions, report, errors."""

import json
import re
import subprocess
import sys

import pytest
import sacrebleu

from tests.eval.test_metrics import needs_wordnet

DOCS = {
    "volcano.txt": "Mount Etna is an active volcano on the east coast of Sicily. It is the tallest active volcano in Europe.",
    "river.txt": "The Danube flows through ten countries and empties into the Black Sea.",
    "bridge.txt": "The Golden Gate Bridge opened in 1937 and spans the strait at the entrance to San Francisco Bay.",
}
QUESTIONS = [
    {"id": "q1", "question": "Where is Mount Etna?", "answers": ["on the east coast of Sicily"], "relevant_documents": ["volcano.txt"]},
    {"id": "q2", "question": "Which sea does the Danube empty into?", "answers": ["the Black Sea"], "relevant_documents": ["river.txt"]},
    {"id": "q3", "question": "When did the Golden Gate Bridge open?", "answers": ["1937"], "relevant_documents": ["bridge.txt"]},
]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcorpus")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    data = root / "data"
    subprocess.run([sys.executable, "-m", "mmrag", "ingest", str(root), "-c", "facts", "--data-dir", str(data)],
                   check=True, capture_output=True, env={**__import__("os").environ, "MMRAG_IMAGE_MODEL": "none"})
    dataset = root / "qa.jsonl"
    dataset.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n")
    return data, dataset


@needs_wordnet
def test_eval_writes_metrics_predictions_and_report(collection, tmp_path):
    data, dataset = collection
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(dataset), "--collection", "facts", "--data-dir", str(data),
                          "--out", str(out), "--ablation", "--no-progress", "--generator", "extractive"], capture_output=True, text=True,
                         env={**__import__("os").environ, "MMRAG_IMAGE_MODEL": "none"})
    assert run.returncode == 0, run.stderr
    m = json.loads((out / "metrics.json").read_text())
    for key in ("bleu", "meteor", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert isinstance(m[key], float)
    assert m["recall@10"] == 1.0 and set(m["ablation"]) == {"bm25", "dense", "rrf", "fused", "fused+features", "fused+rerank"}
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["q1", "q2", "q3"] and all(p["retrieved"] for p in preds)
    # BLEU in metrics.json is sacrebleu's corpus BLEU over predictions.jsonl
    # answers are scored without their [n] markers
    bare = [re.sub(r"\s*\[\d+\]", "", p["answer"]).strip() for p in preds]
    assert all("[1]" in p["answer"] for p in preds) and not any("[" in a for a in bare)
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(bare, [[p["references"][0] for p in preds]]).score)
    assert m["answers_by_kind"]["extractive"]["questions"] == 3
    from nltk.translate.meteor_score import meteor_score

    expected = sum(meteor_score([r.lower().split() for r in p["references"]], a.lower().split()) for p, a in zip(preds, bare)) / 3
    assert m["meteor"] == pytest.approx(expected)
    report = (out / "report.md").read_text()
    assert "## Ablation" in report and "recall_at_k.png" in report and (out / "recall_at_k.png").stat().st_size > 1000


@needs_wordnet
def test_the_reader_answers_with_spans_and_abstention_is_counted(collection, tmp_path):
    data, dataset = collection
    env = {**__import__("os").environ, "MMRAG_IMAGE_MODEL": "none"}
    out = tmp_path / "reader"
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(dataset), "--collection", "facts", "--data-dir", str(data),
                          "--out", str(out), "--no-progress", "--generator", "reader"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    m = json.loads((out / "metrics.json").read_text())
    # short spans, not sentences: each answer is shorter than the sentence holding the reference (a whole
    # sentence would score F1 0.37 here); where a span ends is the model's call ("Sicily" for "on the east
    # coast of Sicily"), so EM and F1 have room below 1
    assert m["exact_match"] >= 1 / 3 and m["f1"] >= 0.5
    assert set(m["answers_by_kind"]) <= {"reader", "no_answer"}
    for p in (json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()):
        sentence = next(s for s in DOCS[p["relevant_documents"][0]].split(". ") if p["references"][0].lower() in s.lower())
        assert len(re.sub(r"\s*\[\d+\]", "", p["answer"]).split()) < len(sentence.split())
    # questions the collection cannot answer: scored for abstention only
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text("\n".join(json.dumps({"id": f"f{i}", "question": q, "answers": ["x"], "relevant_documents": []}) for i, q in
                                 enumerate(["Who painted the Mona Lisa?", "What is the boiling point of water?"])) + "\n")
    out = tmp_path / "foreign"
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(foreign), "--collection", "facts", "--data-dir", str(data),
                          "--out", str(out), "--no-progress", "--generator", "reader", "--unanswerable"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    m = json.loads((out / "metrics.json").read_text())
    kinds = [json.loads(line)["answer_kind"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert m["abstention"]["unanswerable"] == 2 and m["abstention"]["no_answer_rate"] == kinds.count("no_answer") / 2
    assert m["exact_match"] is None and m["recall@1"] is None  # nothing to score them against
    assert "## Abstention" in (out / "report.md").read_text()


def test_malformed_line_is_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(QUESTIONS[0]) + "\n{not json}\n")
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(bad), "--collection", "x", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "line 2" in run.stderr and "not valid JSON" in run.stderr
    bad.write_text(json.dumps({"id": 1, "answers": []}) + "\n")
    run = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(bad), "--collection", "x", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert "line 1" in run.stderr and "question" in run.stderr


def test_squad_and_coqa_loaders(tmp_path):
    from eval.datasets import load_dataset, write_corpus

    squad = {"data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "a", "question": "Where is Paris?", "answers": [{"text": "France"}, {"text": "France"}]}]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad))
    ds = load_dataset(tmp_path / "s.json")
    assert ds.examples[0].answers == ["France"] and ds.examples[0].relevant_documents == ["squad-000-000.txt"]
    assert write_corpus(ds, tmp_path / "c") == 1 and (tmp_path / "c" / "squad-000-000.txt").read_text() == "Paris is in France."
    coqa = {"data": [{"source": "wiki", "id": "s1", "filename": "f", "story": "Tom has a red bike.",
                      "questions": [{"input_text": "What does Tom have?", "turn_id": 1}, {"input_text": "What color?", "turn_id": 2}],
                      "answers": [{"input_text": "a bike", "turn_id": 1}, {"input_text": "red", "turn_id": 2}],
                      "additional_answers": {"0": [{"input_text": "a red bike", "turn_id": 1}]}}]}
    (tmp_path / "c.json").write_text(json.dumps(coqa))
    first = load_dataset(tmp_path / "c.json")
    assert len(first.examples) == 1 and first.examples[0].answers == ["a bike", "a red bike"]
    every = load_dataset(tmp_path / "c.json", "all")
    assert every.examples[1].question == "What does Tom have? What color?"


def test_a_squad_format_split_keeps_one_half_of_the_articles_questions_and_every_passage(tmp_path):
    from eval.datasets import article_split, load_dataset

    articles = [{"id": str(n), "title": f"A{n}", "paragraphs": [{"context": f"Passage {n}.", "qas": [
        {"id": f"q{n}", "question": f"Question {n}?", "answers": [{"text": str(n)}]}]}]} for n in range(12)]
    (tmp_path / "DRCD_dev.json").write_text(json.dumps({"data": articles}))
    train, test = (load_dataset(tmp_path / "DRCD_dev.json", split=half) for half in ("train", "test"))
    assert train.name == "DRCD_dev"  # the report is titled by the set, not its format
    assert {e.id for e in train.examples} == {f"q{n}" for n in range(12) if article_split(articles[n]) == "train"}
    assert {e.id for e in test.examples} == {f"q{n}" for n in range(12)} - {e.id for e in train.examples}
    assert train.examples and test.examples and len(train.corpus) == len(test.corpus) == 12


def test_write_corpus_suggests_a_collection_named_after_its_folder(tmp_path):
    # SQuAD-shifts' files all say "squad" inside: the hint must not send two corpora to one collection
    squad = {"version": "1.0", "data": [{"title": "Etna", "paragraphs": [{"context": DOCS["volcano.txt"], "qas": [
        {"id": "q1", "question": "Where is Mount Etna?", "answers": [{"text": "Sicily", "answer_start": 58}]}]}]}]}
    dataset = tmp_path / "reddit_v1.0.json"
    dataset.write_text(json.dumps(squad))
    out = subprocess.run([sys.executable, "-m", "eval", "--dataset", str(dataset), "--write-corpus", str(tmp_path / "reddit")],
                         check=True, capture_output=True, text=True).stdout
    assert "-c reddit," in out and f"--dataset {dataset} --collection reddit" in out
    assert len(list((tmp_path / "reddit").iterdir())) == 1
