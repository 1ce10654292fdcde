"""Answer and retrieval metrics: BLEU (sacrebleu), METEOR (NLTK), exact match, token F1,
recall@k, MRR@10, nDCG@10."""

from __future__ import annotations

import math
import os
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

from indexes.tokenize import has_wordless_script, wordless_chars

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


def answer_tokens(text: str) -> list[str]:
    """What EM and F1 compare: SQuAD's normalised words; where the text has CJK characters, each of them
    is a token and the Latin or digit runs between them are words, with all punctuation (full-width
    included) dropped, as DRCD's and CMRC's own scripts score Chinese answers. Splitting Chinese on
    spaces would make a whole answer one token, so any near miss would score F1 0."""
    if not has_wordless_script(text):
        return normalize_answer(text).split()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.lower())
    tokens: list[str] = []
    for part in text.split():
        start = 0
        for m in wordless_chars(part):
            tokens += [part[start:m.start()]] if m.start() > start else []
            tokens.append(m.group())
            start = m.end()
        tokens += [part[start:]] if start < len(part) else []
    return tokens


def length_in_words(text: str) -> int:
    """Words, for the reports' length buckets; in CJK text each character counts as one."""
    return len(answer_tokens(text)) if has_wordless_script(text) else len(text.split())


def exact_match(prediction: str, references: list[str]) -> float:
    return float(any(answer_tokens(prediction) == answer_tokens(r) for r in references)) if references else 0.0


def token_f1(prediction: str, references: list[str]) -> float:
    def f1(pred: str, ref: str) -> float:
        p, r = answer_tokens(pred), answer_tokens(ref)
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
    return float(sacrebleu.corpus_bleu(predictions, streams, tokenize=_bleu_tokenizer(references)).score)


def sentence_bleu(prediction: str, references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, references or [""], tokenize=_bleu_tokenizer([references])).score)


def _bleu_tokenizer(references: list[list[str]]) -> str:
    """sacrebleu's 'zh' tokenizer (each CJK character a token) where the references are Chinese, as
    sacrebleu itself advises; its default '13a' splits on spaces, which Chinese does not have."""
    return "zh" if any(has_wordless_script(r) for refs in references for r in refs) else "13a"


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
    """NLTK's meteor_score on whitespace tokens (lowercased), as in its documentation; Chinese on the
    tokens EM and F1 use (characters), where only its exact-match stage applies (WordNet is English)."""
    from nltk.translate.meteor_score import meteor_score

    ensure_wordnet()
    split = answer_tokens if any(has_wordless_script(r) for r in references) else (lambda t: t.lower().split())
    refs = [split(r) for r in references if r.strip()]
    if not refs:
        return 0.0
    return float(meteor_score(refs, split(prediction)))


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
