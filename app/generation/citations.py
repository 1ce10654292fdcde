"""Checking an LLM's ``[n]`` citations against the sources after generation.

Small models cite [1] by habit (measured with Qwen2.5-Coder-1.5B: with a distractor passage first, it
cited [1] for an answer found in [2]). Each sentence's citations are checked against what the cited
source says: the share of the sentence's content words (numbers included) that the source holds. A
citation whose source does not support its sentence moves to the source that clearly does, or is
removed when none does; a number past the last source is removed. Sentences without citations are
left as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexes.tokenize import QUESTION_WORDS, tokenize

_CITE = re.compile(r"\s?\[(\d+)\]")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
MIN_SUPPORT = 0.34  # share of a sentence's content words its source must hold
MARGIN = 0.2  # how much better another source must do to take the citation over


@dataclass
class CitationFix:
    sentence: str
    cited: int
    now: int | None  # the source now cited, None when the citation was removed
    support: float  # the cited source's support for the sentence
    best: float  # the new source's support (or the best one's, when removed)

    def to_dict(self) -> dict:
        return {"sentence": self.sentence, "cited": self.cited, "now": self.now,
                "support": round(self.support, 3), "best": round(self.best, 3)}


def strip_citations(text: str) -> str:
    """The text without its [n] markers (how answers are scored against reference answers)."""
    return _CITE.sub("", text).strip()


def _content(text: str) -> set[str]:
    return {t for t in tokenize(text) if t not in QUESTION_WORDS and (len(t) > 2 or t.isdigit() or not t.isascii())}


def support(sentence: str, source_words: set[str]) -> float:
    words = _content(sentence)
    return len(words & source_words) / len(words) if words else 1.0


def check_citations(text: str, sources: dict[int, str]) -> tuple[str, list[CitationFix]]:
    """``text`` with each sentence's citations checked against ``sources`` (number to text)."""
    vocab = {n: _content(t) for n, t in sources.items()}
    fixes: list[CitationFix] = []
    pieces = _SENTENCE.split(text)
    seps = _SENTENCE.findall(text)
    out = []
    for piece in pieces:
        cited = [int(m) for m in _CITE.findall(piece)]
        if not cited:
            out.append(piece)
            continue
        bare = _CITE.sub("", piece)
        scores = {n: support(bare, words) for n, words in vocab.items()}
        best_n = max(scores, key=scores.get) if scores else None
        keep: list[int] = []
        for n in cited:
            s = scores.get(n, 0.0)
            if n in scores and s >= MIN_SUPPORT:
                keep.append(n)
                continue
            if best_n is not None and scores[best_n] >= MIN_SUPPORT and scores[best_n] >= s + MARGIN:
                keep.append(best_n)
                fixes.append(CitationFix(bare.strip(), n, best_n, s, scores[best_n]))
            else:
                fixes.append(CitationFix(bare.strip(), n, None, s, scores[best_n] if best_n is not None else 0.0))
        keep = list(dict.fromkeys(keep))
        out.append(_recite(piece, keep))
    joined = out[0] if out else ""
    for sep, piece in zip(seps, out[1:]):
        joined += sep + piece
    return joined, fixes


def _recite(piece: str, numbers: list[int]) -> str:
    """The sentence with its markers replaced by ``numbers``, placed where the first marker was."""
    first = _CITE.search(piece)
    bare = _CITE.sub("", piece)
    if not numbers:
        return bare
    at = len(_CITE.sub("", piece[:first.start()]))
    return bare[:at] + " " + "".join(f"[{n}]" for n in numbers) + bare[at:]
