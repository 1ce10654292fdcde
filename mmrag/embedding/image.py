"""Image-text embeddings through open_clip: the offline bridge by default, any CLIP by setting."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from mmrag.embedding import bridge


def to_rgb(img: Image.Image) -> Image.Image:
    """Transparent pixels become white (converting RGBA straight to RGB turns them black)."""
    if img.mode in ("RGBA", "LA", "P") and (img.mode != "P" or "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def pad_to_square(img: Image.Image, fill=(255, 255, 255)) -> Image.Image:
    """Pad on white, keeping the whole picture (clip-art and figures sit on white pages)."""
    w, h = img.size
    side = max(w, h)
    return ImageOps.pad(img, (side, side), color=fill) if w != h else img


class OpenClipEmbedder:
    def __init__(self, model: str, pretrained: str, cache_dir: str | Path = "./data") -> None:
        import open_clip

        kwargs = {}
        self.pad_white = False
        if model == bridge.MODEL_NAME:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            bridge.register(Path(cache_dir))
            if pretrained == "packaged":
                pretrained = str(bridge.packaged_checkpoint(Path(cache_dir)))
            kwargs = {"image_mean": bridge.IMAGE_MEAN, "image_std": bridge.IMAGE_STD, "pretrained_text": False}
            self.pad_white = True
        from mmrag.embedding.factory import image_model_id

        self.name = image_model_id(model, pretrained)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained or None, **kwargs)
        if model == bridge.MODEL_NAME:
            bridge.attach_text_head(self.model)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        with torch.no_grad():
            self.dim = int(self.model.encode_text(self.tokenizer(["x"])).shape[-1])
        self._lock = threading.Lock()

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        prepared = [self.preprocess(pad_to_square(to_rgb(im)) if self.pad_white else to_rgb(im)) for im in images]
        with self._lock, torch.no_grad():
            batch = torch.stack(prepared).contiguous(memory_format=torch.channels_last)
            vecs = self.model.encode_image(batch, normalize=True)
        return vecs.float().numpy()

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Sorted by length and padded to the longest in each batch: open_clip's HF tokenizer pads every
        # text to the full context (128 tokens), ~10x the work for short captions and queries. Mean
        # pooling masks padding, so the vectors are the same.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        hf = getattr(self.tokenizer, "tokenizer", None)
        with self._lock, torch.no_grad():
            for start in range(0, len(order), 128):
                idx = order[start:start + 128]
                batch = [texts[i] for i in idx]
                if hf is not None:
                    tokens = hf(batch, padding="longest", truncation=True, max_length=self.tokenizer.context_length, return_tensors="pt").input_ids
                else:
                    tokens = self.tokenizer(batch)
                out[idx] = self.model.encode_text(tokens, normalize=True).float().numpy()
        return out
