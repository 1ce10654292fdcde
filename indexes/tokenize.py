"""BM25 tokenization for English, Chinese and mixed text.

Latin text: lowercase ``\\w+`` words (what rank_bm25 users usually do). CJK runs: jieba words,
whose dictionary ships in the wheel, so Chinese queries match Chinese passages offline.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence

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


def has_cjk(text: str) -> bool:
    # isascii() is nearly free; the character-class scan costs ~8 us per paragraph, which added up to
    # 1.5 ms a query when the sentence feature checked every candidate
    return not text.isascii() and _CJK_RUN.search(text) is not None


# Scripts written without spaces between words: Japanese kana, CJK ideographs (compatibility ones
# too), Korean syllables. What the English-only reader cannot read, and what answer scoring splits by
# character; jieba (``has_cjk``) handles the Chinese runs alone.
_WORDLESS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def wordless_chars(text: str) -> list[re.Match]:
    return list(_WORDLESS.finditer(text)) if not text.isascii() else []


def has_wordless_script(text: str) -> bool:
    return not text.isascii() and _WORDLESS.search(text) is not None


def tokenize(text: str) -> list[str]:
    text = text.lower()
    if not has_cjk(text):
        return _WORD.findall(text)
    tokens: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        tokens.extend(_WORD.findall(text[pos:m.start()]))
        tokens.extend(_jieba_cut(m.group()))
        pos = m.end()
    tokens.extend(_WORD.findall(text[pos:]))
    return tokens


class TermFinder:
    """Which of ``terms`` a text's tokens hold, as ``set(tokenizer(text)) & terms`` would.

    For Latin text one regex over the terms does it without tokenising (the sentence feature asks this
    of every sentence of every candidate: tokenising them all cost ~15 ms per query). Text with CJK
    runs, CJK terms, or another tokenizer take the plain way.
    """

    def __init__(self, terms: list[str], tokenizer=tokenize) -> None:
        self.wanted = set(terms)
        self.tokenizer = tokenizer
        self.pattern = None
        if tokenizer is tokenize and self.wanted and all(_WORD.fullmatch(t) and not _CJK_RUN.search(t) for t in self.wanted):
            # A \w+ token equals the term exactly when the match has no word character on either side,
            # which for a term of word characters is \b at both ends. (?<!\w)...(?!\w) says the same but
            # defeats the regex engine's literal-prefix scan: 2.5x slower.
            alternatives = "|".join(re.escape(t) for t in sorted(self.wanted, key=len, reverse=True))
            self.pattern = re.compile(r"\b(?:" + alternatives + r")\b", re.U)

    def __call__(self, text: str) -> set[str]:
        if self.pattern is None or has_cjk(text):
            tokens = _cached_tokens(text) if self.tokenizer is tokenize else self.tokenizer(text)
            return self.wanted.intersection(tokens)
        return set(self.pattern.findall(text.lower()))

    def per_sentence(self, text: str, sentences: Sequence[str]) -> list[set[str]]:
        """What each of ``sentences`` holds, they being ``text``'s sentences: the CJK check once per text."""
        if self.pattern is None or has_cjk(text):
            return [self(s) for s in sentences]
        return [set(self.pattern.findall(s.lower())) for s in sentences]


@functools.lru_cache(maxsize=50_000)
def _cached_tokens(text: str) -> frozenset[str]:
    """A sentence's tokens, kept: jieba cuts ~5,000 sentences a second here, and the sentence feature asks
    for every sentence of ~100 candidates per query (130-300 ms a Chinese query uncached); passages that
    come back query after query are cut once."""
    return frozenset(tokenize(text))


def term_finder(terms: list[str], tokenizer=tokenize) -> TermFinder:
    return TermFinder(terms, tokenizer)
