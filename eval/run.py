"""Runs a dataset through the retriever and generator (in process, or a running service) and scores it."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from eval.datasets import Dataset, Example
from eval.metrics import corpus_bleu, doc_ranking, exact_match, length_in_words, meteor, retrieval_scores, sentence_bleu, token_f1

RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
ALL = ("bm25", "dense", "image")
MODES = {  # ablation: name -> (channels, fusion, weight overrides, cross-encoder stage)
    "bm25": (("bm25",), "convex", {"bm25": 1.0, "coverage": 0.0}, False),  # the BM25 score alone
    "dense": (("dense",), "convex", {"maxsim": 0.0}, False),
    "rrf": (ALL, "rrf", None, False),
    "fused": (ALL, "convex", {"maxsim": 0.0, "coverage": 0.0, "sentence": 0.0, "bm25": 0.5, "dense": 0.5}, False),  # BM25 + dense only
    # plus best-sentence similarity, query-term coverage and the sentence feature
    "fused+features": (ALL, "convex", None, False),
    "fused+rerank": (ALL, "convex", None, True),  # the default: and the cross-encoder over the top candidates
}
DEFAULT_MODE = "fused+rerank"
TOP_K = 10


@dataclass
class Prediction:
    id: str
    question: str
    references: list[str]
    relevant: list[str]
    answer: str | None = None
    retrieved: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # evidence_pages / evidence_sources, where the dataset has them
    answer_kind: str | None = None  # the generator's: extractive, generated, ...


class InProcessRunner:
    """Drives mmrag's own retriever and generator, as a user of the library would."""

    def __init__(self, settings, collection: str, types: list[str] | None = None) -> None:
        from app.retrieval import Filters
        from app.services import Services

        self.filters = Filters(types=types) if types else None
        self.services = Services(settings)
        self.collection = collection
        if self.services.store.collection_id(collection) is None:
            raise SystemExit(f"error: no collection named {collection!r} in {settings.data_dir}: ingest the corpus first")
        self._names: dict[int, str] = {}

    def _file(self, doc_id: int) -> str:
        if doc_id not in self._names:
            doc = self.services.store.document(doc_id)
            self._names[doc_id] = doc.file_name if doc else "?"
        return self._names[doc_id]

    def run(self, ex: Example, mode: str, generate: bool) -> Prediction:
        channels, fusion, weights, cross_encoder = MODES[mode]
        pipeline = self.services.pipeline
        t0 = time.perf_counter()
        result = pipeline.retriever.retrieve(ex.question, self.collection, TOP_K, self.filters, channels, fusion, weights, cross_encoder)
        timings = dict(result.timings)
        retrieved = [{"file_name": self._file(h.unit.document_id), "type": h.unit.type, "page": h.unit.page,
                      "pages": h.unit.meta.get("pages"), "unit_id": h.unit.id, "score": round(h.score, 5)} for h in result.hits]
        answer = kind = None
        if generate:
            _, sources, _, _ = pipeline.retrieve(ex.question, self.collection, 5, self.filters)
            t1 = time.perf_counter()
            out = pipeline.generator.generate(ex.question, sources)
            answer, kind = out.text, out.kind
            timings["generate_ms"] = (time.perf_counter() - t1) * 1000
        timings["wall_ms"] = (time.perf_counter() - t0) * 1000
        return Prediction(ex.id, ex.question, ex.answers, ex.relevant_documents, answer, retrieved, timings, meta=ex.meta,
                          answer_kind=kind if generate else None)


class HttpRunner:
    """Drives a running mmrag service through POST /query."""

    def __init__(self, url: str, collection: str, api_key: str | None = None, types: list[str] | None = None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=300, headers=headers)
        self.collection = collection
        self.filters = {"types": types} if types else None

    def run(self, ex: Example, mode: str, generate: bool) -> Prediction:
        if mode != DEFAULT_MODE:
            raise SystemExit("error: --url evaluates the service as configured; ablation modes need the in-process runner")
        t0 = time.perf_counter()
        r = self.client.post("/query", json={"query": ex.question, "collection": self.collection, "top_k": TOP_K,
                                                "generate": generate, "filters": self.filters})
        if r.status_code != 200:
            raise SystemExit(f"error: the service answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        retrieved = [{"file_name": c["file_name"], "type": c["type"], "page": c["page"], "pages": c.get("pages"),
                      "unit_id": c["unit_id"], "score": c["score"]}
                     for c in body["citations"]]
        timings = {**body.get("timings_ms", {}), "wall_ms": (time.perf_counter() - t0) * 1000}
        answer = body["answer"]["text"] if body.get("answer") else None
        kind = body["answer"].get("kind") if body.get("answer") else None
        return Prediction(ex.id, ex.question, ex.answers, ex.relevant_documents, answer, retrieved, timings, meta=ex.meta,
                          answer_kind=kind)


PAGE_KEYS = ("page_hit@1", "page_hit@5", "page_hit@10")


def page_scores(p: Prediction, kind: str | None = None) -> dict[str, float]:
    """Page level: a hit at k when any evidence page of a relevant document is among the first k distinct
    (document, page) pairs retrieved (of the units of one ``kind`` only, if given)."""
    relevant = {(d, n) for d in p.relevant for n in p.meta.get("evidence_pages", [])}
    # a table joined across pages counts for each of its pages
    pages = list(dict.fromkeys((r["file_name"], n) for r in p.retrieved if r.get("page") and (kind is None or r.get("type") == kind)
                               for n in (r.get("pages") or [r["page"]])))
    return {f"page_hit@{k}": float(bool(relevant & set(pages[:k]))) for k in (1, 5, 10)}


def score_prediction(p: Prediction) -> None:
    ranking = doc_ranking([r["file_name"] for r in p.retrieved])
    p.scores = retrieval_scores(ranking, set(p.relevant)) if p.relevant else {}
    if p.relevant and p.meta.get("evidence_pages"):
        p.scores.update(page_scores(p))
    if p.answer is not None and p.references and not p.meta.get("unanswerable"):
        # an abstention on a question the documents answer scores as an empty answer
        text = "" if p.answer_kind == "no_answer" else answer_text(p.answer)
        p.scores.update(bleu=sentence_bleu(text, p.references), exact_match=exact_match(text, p.references),
                        f1=token_f1(text, p.references))


def answer_text(answer: str) -> str:
    """The answer as scored: without its [n] citation markers (a "[1]" would count as a wrong token)."""
    from app.generation.citations import strip_citations

    return strip_citations(answer)




def aggregate(preds: list[Prediction], with_meteor: bool) -> dict:
    out: dict = {"questions": len(preds)}
    judged = [p for p in preds if p.relevant]
    for key in RETRIEVAL_KEYS:
        out[key] = statistics.fmean(p.scores[key] for p in judged) if judged else None
    by_type: dict[str, dict] = {}
    for kind in ("text", "table", "image"):
        subset = []
        for p in judged:
            ranking = doc_ranking([r["file_name"] for r in p.retrieved if r["type"] == kind])
            subset.append(retrieval_scores(ranking, set(p.relevant)))
        if judged and any(r["type"] == kind for p in judged for r in p.retrieved):
            by_type[kind] = {k: statistics.fmean(s[k] for s in subset) for k in RETRIEVAL_KEYS}
    out["by_modality"] = by_type
    paged = [p for p in judged if "page_hit@5" in p.scores]
    if paged:
        out.update({k: statistics.fmean(p.scores[k] for p in paged) for k in PAGE_KEYS})
        sources = sorted({s for p in paged for s in p.meta.get("evidence_sources", [])})
        out["page_hit@5_by_source"] = {s: {"questions": len(sub), "page_hit@5": statistics.fmean(p.scores["page_hit@5"] for p in sub)}
                                       for s in sources for sub in [[p for p in paged if s in p.meta.get("evidence_sources", [])]]}
        # which kind of unit finds the page: each kind's own units ranked alone
        out["page_hit@5_by_unit_type"] = {kind: statistics.fmean(page_scores(p, kind)["page_hit@5"] for p in paged)
                                          for kind in ("text", "table", "image") if any(r["type"] == kind for p in paged for r in p.retrieved)}
    answered = [p for p in preds if p.answer is not None and p.references and not p.meta.get("unanswerable")]
    if any(p.answer_kind == "no_answer" or p.meta.get("unanswerable") for p in preds if p.answer is not None):
        out["abstention"] = abstention([p for p in preds if p.answer is not None])
    if answered:
        out["bleu"] = corpus_bleu([answer_text(p.answer) for p in answered], [p.references for p in answered])
        out["exact_match"] = statistics.fmean(p.scores["exact_match"] for p in answered)
        out["f1"] = statistics.fmean(p.scores["f1"] for p in answered)
        if with_meteor:
            for p in answered:
                p.scores["meteor"] = meteor(answer_text(p.answer), p.references)
            out["meteor"] = statistics.fmean(p.scores["meteor"] for p in answered)
        kinds = sorted({p.answer_kind for p in answered if p.answer_kind})
        out["answers_by_kind"] = {k: {"questions": len(sub), "exact_match": statistics.fmean(p.scores["exact_match"] for p in sub),
                                      "f1": statistics.fmean(p.scores["f1"] for p in sub)}
                                  for k in kinds for sub in [[p for p in answered if p.answer_kind == k]]}
        out["answers_by_length"] = answers_by_length(answered)
    else:
        out.update(bleu=None, meteor=None, exact_match=None, f1=None)
    stages = sorted({k for p in preds for k in p.timings})
    out["latency_ms"] = {s: _summary([p.timings[s] for p in preds if s in p.timings]) for s in stages}
    return out


# word-count buckets: short factoid answers ("1871") and long ones ("because the river flooded the
# lower town") behave differently for a span reader and for BLEU/METEOR
QUESTION_BUCKETS = ((0, 6, "1-6 words"), (7, 10, "7-10 words"), (11, 10**6, "11+ words"))
ANSWER_BUCKETS = ((0, 1, "1 word"), (2, 3, "2-3 words"), (4, 10**6, "4+ words"))


def answers_by_length(answered: list[Prediction]) -> dict:
    """EM and F1 by the question's length and by the (first) reference answer's length, in words."""
    def bucket(n: int, buckets) -> str:
        return next(name for lo, hi, name in buckets if lo <= n <= hi)

    out = {}
    for axis, words, buckets in (("question", lambda p: length_in_words(p.question), QUESTION_BUCKETS),
                                 ("answer", lambda p: length_in_words(p.references[0]), ANSWER_BUCKETS)):
        groups: dict[str, list[Prediction]] = {}
        for p in answered:
            groups.setdefault(bucket(words(p), buckets), []).append(p)
        out[axis] = {name: {"questions": len(groups[name]),
                            "exact_match": statistics.fmean(p.scores["exact_match"] for p in groups[name]),
                            "f1": statistics.fmean(p.scores["f1"] for p in groups[name])}
                     for _, _, name in buckets if name in groups}
    return out


RIGHT_F1 = 0.5  # an answer counts as right for answered precision at this token F1


def abstention(preds: list[Prediction]) -> dict:
    """How often the generator answers what the documents answer (and how well), and how often it says
    "no answer" to what they do not."""
    answerable = [p for p in preds if not p.meta.get("unanswerable") and p.references]
    unanswerable = [p for p in preds if p.meta.get("unanswerable")]
    given = [p for p in answerable if p.answer_kind != "no_answer"]
    share = lambda part, whole: len(part) / len(whole) if whole else None  # noqa: E731
    return {"answerable": len(answerable), "answer_rate": share(given, answerable),
            "answered_precision": share([p for p in given if p.scores.get("f1", 0) >= RIGHT_F1], given),
            "answered_f1": statistics.fmean(p.scores.get("f1", 0) for p in given) if given else None,
            "unanswerable": len(unanswerable),
            "no_answer_rate": share([p for p in unanswerable if p.answer_kind == "no_answer"], unanswerable)}


def _summary(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"mean": round(statistics.fmean(values), 2), "p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2), "p99": round(pick(0.99), 2)}


def evaluate(dataset: Dataset, runner, modes: list[str], generate: bool, progress: bool = True) -> dict[str, tuple[dict, list[Prediction]]]:
    from tqdm import tqdm

    results = {}
    for mode in modes:
        preds = []
        for ex in tqdm(dataset.examples, desc=f"eval {mode}", unit="q", disable=not progress, dynamic_ncols=True):
            p = runner.run(ex, mode, generate and mode == modes[-1])
            score_prediction(p)
            preds.append(p)
        results[mode] = (aggregate(preds, with_meteor=generate and mode == modes[-1]), preds)
    return results
