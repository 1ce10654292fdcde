"""BM25 tokenization for English, Chinese and mixed text.

Latin text: lowercase ``\\w+`` words (what rank_bm25 users usually do). CJK runs: jieba words,
whose dictionary ships in the wheel, so Chinese queries match Chinese passages offline.
"""

from __future__ import annotations

import re
import threading

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+", re.U)
_jieba = None
_jieba_lock = threading.Lock()


def _jieba_cut(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return [w for w in _jieba.lcut(text) if w.strip()]


# Words that shape a question rather than name what it asks about. Questions are full of them and
# passages rarely hold "what" or "did", so by idf they would weigh like rare content words; the
# query-term coverage feature skips them (with them, CoQA MRR@10 was 0.008 lower: docs/benchmarks.md).
# BM25 scoring keeps every term, as rank_bm25 does. The Chinese words are the usual interrogatives
# and sentence-final particles, as jieba cuts them (not measured: no Chinese QA set here).
QUESTION_WORDS = frozenset(
    "the a an of in on at to for by with from and or is was were are be been what which who whom whose when where "
    "why how did do does that this as it its into than".split()
    + ["什么", "哪", "哪里", "哪个", "哪些", "谁", "何时", "什么时候", "怎么", "怎样", "如何", "为什么", "多少", "几",
       "吗", "呢", "吧", "的", "了", "是"]
)


def tokenize(text: str) -> list[str]:
    text = text.lower()
    if not _CJK_RUN.search(text):
        return _WORD.findall(text)
    tokens: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        tokens.extend(_WORD.findall(text[pos:m.start()]))
        tokens.extend(_jieba_cut(m.group()))
        pos = m.end()
    tokens.extend(_WORD.findall(text[pos:]))
    return tokens


def term_finder(terms: list[str], tokenizer=tokenize):
    """A function giving which of ``terms`` a text's tokens hold, as ``set(tokenizer(text)) & terms`` would.

    For Latin text one regex over the terms does it without tokenising (the sentence features call
    this for every sentence of every candidate: tokenising them all cost ~15 ms per query). Text with
    CJK runs, CJK terms, or another tokenizer take the plain way.
    """
    wanted = set(terms)
    if tokenizer is not tokenize or not wanted or any(_CJK_RUN.search(t) for t in wanted):
        return lambda text: wanted.intersection(tokenizer(text))
    # a \w+ token equals the term exactly when the match has no word character on either side
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in sorted(wanted, key=len, reverse=True)) + r")(?!\w)", re.U)

    def holds(text: str) -> set[str]:
        low = text.lower()
        return wanted.intersection(tokenize(low)) if _CJK_RUN.search(low) else set(pattern.findall(low))

    return holds
