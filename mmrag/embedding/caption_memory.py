"""The caption memory of the offline image-text model: captioned drawings it can compare with.

The concept bridge alone knows only the 1000 ImageNet concepts. The memory adds ~21,000 captioned
pictures: Open Clip Art drawings (public domain) and emoji and icons captioned by their names (built
by ``bench/caption_memory.py``, which leaves out every drawing of the image-text benchmark and its
near-duplicates). An image borrows the captions of its nearest pictures in the memory; a text query
borrows the pictures whose captions are nearest to it. Nothing is trained: the memory is looked up, k-nearest-neighbour
style, so it cannot overfit its noisy captions the way the trained heads measured before did.

Pictures are compared in two feature spaces at once, the pooled features of the Lite0 and the Lite2
trunk (each reduced to 256 dimensions by PCA), their cosines averaged: two ImageNet networks of
different size disagree on which drawings look alike often enough that the average finds better
neighbours (held-out text-to-image recall@10 0.443 -> 0.467 when it was added, before whitening). The memory
file stores each space's PCA and its pictures' projected features as int8 with a scale per row.

The memory always on helps drawings and hurts photos (CIFAR-10 text-to-image precision@50 fell from
0.62 to 0.57 on held-out photos), so an image leans on the memory only as far as its nearest memory
picture is close: not at all below a cosine of ``GATE_LOW``, fully above ``GATE_LOW + GATE_WIDTH``.
All settings were chosen on the dev splits of ``bench/image_text.py`` (clip art, constrained by
CIFAR-10's dev half); ``bench/memory_grid.py`` scores them. With the whitened text side (``WHITEN``)
the gated memory helps photos too (zero-shot accuracy 0.59 -> 0.65), so the chosen gate opens lower
than version 3's (0.35).
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

MEMORY_FILE = Path(__file__).parent / "data" / "caption_memory.npz"
SPACES = ("lite0", "lite2")  # the trunks whose pooled features the pictures are compared in
FEATURE_DIM = 256  # PCA of each trunk's 1280 pooled features: held-out recall unchanged, a 5x smaller file
MIX = 0.5  # Lite2's share of a picture-to-picture cosine
K_IMAGE, TAU_IMAGE = 10, 0.05  # an image's neighbours, and the softmax temperature over their cosines
K_TEXT, TAU_TEXT = 40, 0.1  # a text's neighbours by caption (many: the memory draws most things in several styles)
ALPHA = 0.3  # share of the borrowed captions in an image's concept distribution
W_CAPTION, W_PICTURE = 0.15, 0.5  # weights of the borrowed-caption and borrowed-picture parts of the score
GATE_LOW, GATE_WIDTH = 0.2, 0.2
# A text's borrowed picture (the weighted mean of its neighbours' pictures) has each dimension divided by
# that dimension's spread over the memory (to this power): without it the few PCA axes with the most
# variance outweigh the many finer ones. Chosen on the dev split (on or off in bench/memory_grid.py's grid);
# held-out text-to-image recall@1 0.188 -> 0.210 with it, at the shipped settings (bench/image_text.py).
WHITEN = 1.0


@functools.lru_cache(maxsize=1)
def digest() -> str:
    return hashlib.sha256(MEMORY_FILE.read_bytes()).hexdigest()[:8]


def load(path: Path = MEMORY_FILE) -> dict[str, np.ndarray]:
    """The committed memory, or another memory file (a benchmark's baseline)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m bench.caption_memory`")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def space_weights() -> dict[str, float]:
    """Each feature space's factor in the joined picture vector: dot products of joined vectors are the
    MIX-weighted average of the two spaces' cosines."""
    return {"lite0": (1 - MIX) ** 0.5, "lite2": MIX ** 0.5}


def quantise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with a float scale each: a quarter of float32, and cosines move by under 0.005."""
    scale = np.maximum(np.abs(x).max(axis=1), 1e-12) / 127
    return np.round(x / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def pictures(memory: dict[str, np.ndarray]) -> np.ndarray:
    """The memory's pictures as one matrix: each space's projected features, weighted, side by side."""
    w = space_weights()
    return np.concatenate([w[s] * memory[f"{s}_features"].astype(np.float32) * memory[f"{s}_scale"][:, None] for s in SPACES],
                          axis=1)


def project(features: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """PCA projection divided by the full centred norm: dot products of two projections approximate cosines
    in the full feature space, which separate photos from drawings better than cosines within the 256-d
    subspace (chosen on the dev splits: CIFAR-10 accuracy kept)."""
    centred = features - mean
    return (centred @ axes.T) / np.maximum(np.linalg.norm(centred, axis=-1, keepdims=True), 1e-12)


def size() -> int:
    """How many drawings the memory holds, read from the texts array's header alone (a model sizes its buffers
    with it before its checkpoint fills them; loading every array for that took ~50 ms)."""
    with zipfile.ZipFile(MEMORY_FILE) as z, z.open("texts.npy") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        return read_header(f)[0][0]


def neighbours(sims: torch.Tensor, k: int, tau: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k indices per row, their softmax weights at temperature tau, and each row's best cosine."""
    top, idx = sims.topk(min(k, sims.shape[-1]), dim=-1)
    return idx, torch.softmax(top / tau, dim=-1), top[..., 0]


def gate(best: torch.Tensor) -> torch.Tensor:
    return ((best - GATE_LOW) / GATE_WIDTH).clamp(0, 1)
