"""The caption memory of the offline image-text model: captioned drawings it can compare with.

The concept bridge alone knows only the 1000 ImageNet concepts. The memory adds ~21,000 captioned
pictures: Open Clip Art drawings (public domain) and emoji and icons captioned by their names (built
by ``bench/caption_memory.py``, which leaves out every drawing of the image-text benchmark and its
near-duplicates). An image borrows the captions of its nearest pictures in the memory; a text query
borrows the pictures whose captions are nearest to it. Nothing is trained: the memory is looked up, k-nearest-neighbour
style, so it cannot overfit its noisy captions the way the trained heads measured before did.

The memory helps drawings and hurts photos when always on (CIFAR-10 zero-shot accuracy fell from
0.59 to 0.53 on held-out photos), so an image leans on the memory only as far as its nearest memory
drawing is close: not at all below a cosine of ``GATE_LOW`` (most photos), fully above
``GATE_LOW + GATE_WIDTH``. All settings were chosen on the dev splits of ``bench/image_text.py``
(clip art, constrained by CIFAR-10's dev half); ``bench/memory_grid.py`` scores them.
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

MEMORY_FILE = Path(__file__).parent / "data" / "caption_memory.npz"
FEATURE_DIM = 256  # PCA of the trunk's 1280 pooled features: held-out recall unchanged, a 5x smaller file
K_IMAGE, TAU_IMAGE = 10, 0.1  # an image's neighbours, and the softmax temperature over their cosines
K_TEXT, TAU_TEXT = 40, 0.1  # a text's neighbours by caption (many: the memory draws most things in several styles)
ALPHA = 0.3  # share of the borrowed captions in an image's concept distribution
W_CAPTION, W_PICTURE = 0.2, 0.3  # weights of the borrowed-caption and borrowed-picture parts of the score
GATE_LOW, GATE_WIDTH = 0.35, 0.1


@functools.lru_cache(maxsize=1)
def digest() -> str:
    return hashlib.sha256(MEMORY_FILE.read_bytes()).hexdigest()[:8]


def load(path: Path = MEMORY_FILE) -> dict[str, np.ndarray]:
    """The committed memory, or another memory file (a benchmark's baseline)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: rebuild it with `python -m bench.caption_memory`")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


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
