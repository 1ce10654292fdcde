"""A deterministic stand-in for the text model, for tests of store and fusion logic that need vectors
with meaning but not a real model: each word has a fixed random direction, and a text is the
normalised sum of its words' directions, so texts that share words are near each other."""

from __future__ import annotations

import hashlib

import numpy as np

from indexes.tokenize import tokenize


class HashEmbedder:
    name = "test:hash-words"

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha1(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=self.dim)

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            v = sum((self._word(w) for w in tokenize(text)), np.zeros(self.dim))
            norm = np.linalg.norm(v)
            out[i] = v / norm if norm else v
        return out
