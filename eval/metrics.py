"""Answer and retrieval metrics: BLEU (sacrebleu), METEOR (NLTK), exact match, token F1,
recall@k, MRR@10, nDCG@10."""

from __future__ import annotations

import math
import os
import re
import string
from collections import Counter
from pathlib import Path

WORDNET_HELP = (
    "METEOR needs NLTK's WordNet data. Offline on Debian: apt-get install wordnet-base wordnet-sense-index, "
    "then `python -m eval.wordnet` copies it into ./nltk_data (set NLTK_DATA to that folder). "
    "With network: python -c \"import nltk; nltk.download('wordnet')\"."
)


class MetricSetupError(RuntimeError):
    pass


# -- answers -------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, references: list[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in references)) if references else 0.0


def token_f1(prediction: str, references: list[str]) -> float:
    def f1(pred: str, ref: str) -> float:
        p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
        common = sum((Counter(p) & Counter(r)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(r)
        return 2 * precision * recall / (precision + recall)

    return max((f1(prediction, r) for r in references), default=0.0)


def corpus_bleu(predictions: list[str], references: list[list[str]]) -> float:
    """sacrebleu corpus BLEU (0-100). References may differ in number per prediction."""
    import sacrebleu

    n_refs = max((len(r) for r in references), default=1) or 1
    streams = [[(refs[i] if i < len(refs) else "") for refs in references] for i in range(n_refs)]
    return float(sacrebleu.corpus_bleu(predictions, streams).score)


def sentence_bleu(prediction: str, references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, references or [""]).score)


def ensure_wordnet() -> None:
    """Raise MetricSetupError (with how to fix it) unless WordNet loads: checked before a run, not after it."""
    import nltk

    local = Path(os.environ.get("MMRAG_NLTK_DATA", "nltk_data")).resolve()
    if local.exists() and str(local) not in nltk.data.path:
        nltk.data.path.insert(0, str(local))
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
    except LookupError as exc:
        raise MetricSetupError(WORDNET_HELP) from exc


def meteor(prediction: str, references: list[str]) -> float:
    """NLTK's meteor_score on whitespace tokens (lowercased), as in its documentation."""
    from nltk.translate.meteor_score import meteor_score

    ensure_wordnet()
    refs = [r.lower().split() for r in references if r.strip()]
    if not refs:
        return 0.0
    return float(meteor_score(refs, prediction.lower().split()))


# -- retrieval -----------------------------------------------------------------------------
def doc_ranking(retrieved_docs: list[str]) -> list[str]:
    """Units to documents: a document ranks where its first unit ranks."""
    return list(dict.fromkeys(retrieved_docs))


def recall_at(ranking: list[str], relevant: set[str], k: int) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant) if relevant else 0.0


def mrr_at(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    for i, d in enumerate(ranking[:k]):
        if d in relevant:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def retrieval_scores(ranking: list[str], relevant: set[str]) -> dict[str, float]:
    return {"recall@1": recall_at(ranking, relevant, 1), "recall@5": recall_at(ranking, relevant, 5),
            "recall@10": recall_at(ranking, relevant, 10), "mrr@10": mrr_at(ranking, relevant, 10),
            "ndcg@10": ndcg_at(ranking, relevant, 10)}
