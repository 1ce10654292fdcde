"""Builds the caption memory of the offline image-text model from Open Clip Art, emoji and icon packages.

    apt-get install openclipart-svg openclipart-png wordnet-base wordnet-sense-index fonts-noto-color-emoji librsvg2-bin
    python -m eval.wordnet
    npm install --prefix ICONS @iconify-json/twemoji@1.2.5 ...   (the sets and versions of bench/memory_sources.py)
    python -m bench.caption_memory --iconify ICONS [--out mmrag/embedding/data/caption_memory.npz]

Two kinds of captioned pictures: Open Clip Art drawings (public domain), and emoji and icons captioned
by their names (the Noto font's and six ``@iconify-json`` sets'; ``bench/memory_sources.py``). The memory holds every
one the image-text benchmark does not use: drawings of its dev and held-out splits, drawings with
the same title as one of them, and near-duplicates of them (cosine above 0.95 in the trunk's
feature space) are left out, and so are the drawings the test fixtures were made from, so that
neither the benchmark nor the tests can find a drawing through its own copy. Each entry keeps its
caption (a drawing's SVG title plus the name of its folder, e.g. "Mouse Scroll hardware"; an emoji's
name, e.g. "dog face"), its source, and the pooled features of the Lite0 and the Lite2 trunk, each
projected to 256 dimensions by its own PCA and stored as int8. The output is committed; rerunning this
script rebuilds it (the trunks' features are cached per file: about an hour on 2 cores the first time).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench import memory_sources
from bench.clipart import PNG_ROOT, SVG_ROOT, build
from bench.filecache import per_file
from bench.image_text import caption_text, unit
from mmrag.embedding import caption_memory

# the Open Clip Art files behind tests/fixtures/images
FIXTURE_SOURCES = {"drums_jarno_vasamaa_.png", "bulldog_puppy_ganson.png", "orange_slice_jonathan_di_01.png"}
NEAR_DUPLICATE = 0.95


def entries(exclude_png: set[str], exclude_titles: set[str]) -> list[dict]:
    out = []
    for svg in sorted(SVG_ROOT.rglob("*.svg")):
        png = PNG_ROOT / svg.relative_to(SVG_ROOT).with_suffix(".png")
        if not png.exists() or str(png) in exclude_png or png.name in FIXTURE_SOURCES:
            continue
        m = re.search(r"<dc:title>([^<]*)</dc:title>", svg.read_text(errors="ignore")[:30000])
        title = caption_text(" ".join(m.group(1).split())) if m else ""
        if title.lower() in exclude_titles:
            continue
        folders = [p.replace("_", " ") for p in svg.relative_to(SVG_ROOT).parts[:-1]]
        text = (title + " " + " ".join(folders[-1:])).strip() or " ".join(folders)
        if text:
            out.append({"png": str(png), "text": text, "source": "openclipart"})
    return out


# each trunk's features are cached in their own file (Lite0's since the memory's first version)
CACHE_FILES = {"lite0": "trunk-features.npz", "lite2": "lite2-features.npz"}


def trunk_features(paths: list[str], cache: Path, space: str = "lite0") -> np.ndarray:
    """A trunk's pooled features at its own resolution (Lite0 224 px, Lite2 260 px), preprocessed as the
    model preprocesses; cached per file."""
    from tqdm import tqdm

    from mmrag.embedding.bridge import IMAGE_MEAN, IMAGE_STD, RESOLUTION, lite_trunk
    from mmrag.embedding.image import pad_to_square, to_rgb

    def compute(todo: list[str]) -> dict[str, np.ndarray]:
        import open_clip

        trunk = lite_trunk(int(space[-1]))
        prep = open_clip.image_transform(RESOLUTION[space], is_train=False, mean=IMAGE_MEAN, std=IMAGE_STD)
        Image.MAX_IMAGE_PIXELS = None  # a few drawings are rendered huge; they are trusted files
        out = []
        with torch.no_grad():
            for start in tqdm(range(0, len(todo), 32), desc=f"{space} features", unit="batch"):
                batch = []
                for p in todo[start:start + 32]:
                    with Image.open(p) as im:
                        batch.append(prep(pad_to_square(to_rgb(im))))
                x = torch.stack(batch).contiguous(memory_format=torch.channels_last)
                out.append(trunk.forward_head(trunk.forward_features(x), pre_logits=True).numpy())
        return {"features": np.concatenate(out).astype(np.float32)}

    return per_file(paths, cache, compute)["features"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("data/bench-cache"))
    ap.add_argument("--out", type=Path, default=caption_memory.MEMORY_FILE)
    ap.add_argument("--iconify", type=Path, required=True, help="npm install --prefix folder holding the @iconify-json sets")
    args = ap.parse_args()
    t0 = time.perf_counter()
    bench_items = build(args.cache / "clipart.json")
    memory = entries({d["png"] for d in bench_items}, {caption_text(d["caption"]).lower() for d in bench_items})
    memory += memory_sources.noto_emoji(args.cache / "emoji" / "noto-color-emoji")
    for name in memory_sources.ICONIFY_SETS:
        memory += memory_sources.iconify(memory_sources.iconify_package(args.iconify, name), name, args.cache / "emoji" / name)
    paths = [d["png"] for d in bench_items] + [d["png"] for d in memory]
    feats = {s: trunk_features(paths, args.cache / CACHE_FILES[s], s) for s in caption_memory.SPACES}
    bench_f, mem_f = feats["lite0"][:len(bench_items)], feats["lite0"][len(bench_items):]
    mu = mem_f.mean(0)
    duplicate = (unit(bench_f - mu) @ unit(mem_f - mu).T).max(0) > NEAR_DUPLICATE
    keep = ~duplicate
    texts = [d["text"] for d, k in zip(memory, keep) if k]
    sources = [d["source"] for d, k in zip(memory, keep) if k]
    arrays = {}
    for space, f in feats.items():
        f = f[len(bench_items):][keep]
        mean = f.mean(0)
        axes = np.linalg.svd(f - mean, full_matrices=False)[2][:caption_memory.FEATURE_DIM]
        # each row keeps the share of its norm that the 256 axes hold, so that a dot product of two rows is
        # close to the cosine in the full feature space; photos, far from this subspace, then score low
        # against every drawing, which the model's gate relies on
        q, scale = caption_memory.quantise(caption_memory.project(f, mean, axes))
        arrays |= {f"{space}_features": q, f"{space}_scale": scale, f"{space}_mean": mean.astype(np.float32),
                   f"{space}_axes": axes.astype(np.float32)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, texts=np.array(texts), sources=np.array(sources), **arrays)
    counts = ", ".join(f"{n} {sources.count(n)}" for n in dict.fromkeys(sources))
    print(f"{len(texts)} pictures ({counts}; {int(duplicate.sum())} near-duplicates of benchmark drawings left out) -> {args.out} "
          f"({args.out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
