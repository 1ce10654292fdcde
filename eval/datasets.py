"""Evaluation datasets: SQuAD JSON, CoQA JSON, and JSONL lines of our own format.

A question is relevant-matched by the *file name* of the retrieved unit's document. For SQuAD and
CoQA the corpus is materialised as one text file per paragraph or story (``write_corpus``), so the
same files can be ingested with ``mmrag ingest`` like any user's documents.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


class DatasetError(ValueError):
    """A dataset file is malformed; the message names the file and the line or item."""


@dataclass
class Example:
    id: str
    question: str
    answers: list[str]
    relevant_documents: list[str]
    meta: dict = field(default_factory=dict)


@dataclass
class Dataset:
    name: str
    examples: list[Example]
    corpus: dict[str, str] = field(default_factory=dict)  # file name -> text (SQuAD, CoQA)


def squad_doc_name(article: int, paragraph: int) -> str:
    return f"squad-{article:03d}-{paragraph:03d}.txt"


def article_split(article: dict) -> str:
    """'train' or 'test' for a SQuAD-format article, fixed by its id (or title): the multilingual
    reader learns from DRCD's train-half articles (``bench/train_reader_e5.py``), so its answers are
    scored on the test half."""
    return _half(str(article.get("id") or article.get("title") or ""))


def load_squad(path: Path, split: str | None = None) -> Dataset:
    """SQuAD-format articles (SQuAD, DRCD). ``split`` keeps the questions of one half of the
    articles (``article_split``); the corpus always holds every paragraph."""
    data = _read_json(path)
    if "data" not in data or not isinstance(data["data"], list):
        raise DatasetError(f"{path}: not SQuAD JSON (no 'data' list of articles)")
    examples, corpus = [], {}
    for a, article in enumerate(data["data"]):
        asked = split is None or article_split(article) == split
        for p, para in enumerate(article.get("paragraphs", [])):
            name = squad_doc_name(a, p)
            corpus[name] = para["context"]
            for qa in para.get("qas", []) if asked else []:
                answers = list(dict.fromkeys(x["text"] for x in qa.get("answers", [])))
                examples.append(Example(str(qa["id"]), qa["question"], answers, [name], {"title": article.get("title")}))
    # named by its file (DRCD_dev, squaddev_v1.1): the report's title says which set of this format it is
    return Dataset(Path(path).stem, examples, corpus)


def _half(key: str) -> str:
    return "train" if hashlib.sha1(key.encode()).digest()[0] % 2 else "test"


def coqa_split(story_id: str) -> str:
    """'train' or 'test', fixed by the story's id: the packaged readers learn from the train half's
    stories (``bench/train_reader.py --coqa``), so their CoQA answers are scored on the test half."""
    return _half(story_id)


def load_coqa(path: Path, turns: str = "first", split: str | None = None) -> Dataset:
    """CoQA stories. Later turns lean on the conversation ("who created him?"), so by default only the
    first, self-contained question of each story is asked; ``turns='all'`` asks every turn with the
    previous question prepended as context. ``split`` ('train' or 'test', see ``coqa_split``) keeps
    the questions of one half of the stories; the corpus always holds every story."""
    data = _read_json(path)
    if "data" not in data or not isinstance(data["data"], list):
        raise DatasetError(f"{path}: not CoQA JSON (no 'data' list of stories)")
    examples, corpus = [], {}
    for story in data["data"]:
        name = f"coqa-{story['source']}-{story['id']}.txt"
        corpus[name] = story["story"]
        answers = {a["turn_id"]: a["input_text"] for a in story["answers"]}
        extra = {}
        for alt in (story.get("additional_answers") or {}).values():
            for a in alt:
                extra.setdefault(a["turn_id"], []).append(a["input_text"])
        prev = None
        for q in story["questions"] if split is None or coqa_split(story["id"]) == split else []:
            t = q["turn_id"]
            if turns == "first" and t != 1:
                break
            question = q["input_text"] if prev is None or turns == "first" else f"{prev} {q['input_text']}"
            refs = list(dict.fromkeys([answers.get(t, ""), *extra.get(t, [])]))
            refs = [r for r in refs if r]
            # CoQA marks what the story does not say as "unknown": those test abstention
            meta = {"source": story["source"], "unanswerable": bool(refs) and all(r.strip().lower() == "unknown" for r in refs)}
            examples.append(Example(f"{story['id']}_{t}", question, refs, [name], meta))
            prev = q["input_text"]
    return Dataset("coqa", examples, corpus)


def load_jsonl(path: Path) -> Dataset:
    examples = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}, line {n}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}, line {n}: expected an object, got {type(obj).__name__}")
            missing = [k for k in ("question",) if not isinstance(obj.get(k), str) or not obj.get(k).strip()]
            if missing:
                raise DatasetError(f"{path}, line {n}: missing or empty field(s) {', '.join(missing)}")
            answers = obj.get("answers", [])
            docs = obj.get("relevant_documents", [])
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise DatasetError(f"{path}, line {n}: 'answers' must be a list of strings")
            if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
                raise DatasetError(f"{path}, line {n}: 'relevant_documents' must be a list of file names")
            meta = {}
            pages = obj.get("evidence_pages")
            if pages is not None:  # page-level judgements (MMLongBench-Doc style): 1-based pages of the relevant document(s)
                if not isinstance(pages, list) or not all(isinstance(x, int) for x in pages):
                    raise DatasetError(f"{path}, line {n}: 'evidence_pages' must be a list of page numbers")
                meta["evidence_pages"] = pages
                meta["evidence_sources"] = [str(x) for x in obj.get("evidence_sources") or []]
            examples.append(Example(str(obj.get("id", n)), obj["question"], answers, [Path(d).name for d in docs], meta))
    return Dataset(Path(path).stem, examples)


def load_dataset(path: Path, coqa_turns: str = "first", split: str | None = None) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.suffix in (".jsonl", ".ndjson"):
        return load_jsonl(path)
    data = _read_json(path)
    first = (data.get("data") or [{}])[0] if isinstance(data, dict) else {}
    if "story" in first:
        return load_coqa(path, coqa_turns, split)
    if "paragraphs" in first:
        return load_squad(path, split)
    raise DatasetError(f"{path}: neither SQuAD nor CoQA JSON, and not .jsonl")


_CACHE: dict[Path, dict] = {}


def _read_json(path: Path) -> dict:
    path = Path(path).resolve()
    if path not in _CACHE:
        try:
            _CACHE[path] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    return _CACHE[path]


def write_corpus(dataset: Dataset, out: Path) -> int:
    """One text file per paragraph or story, named as the relevance labels name them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in dataset.corpus.items():
        (out / name).write_text(text, encoding="utf-8")
    return len(dataset.corpus)
