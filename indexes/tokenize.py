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
