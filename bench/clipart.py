"""A captioned image set from Debian's Open Clip Art packages (public domain), for image-text benchmarks.

    apt-get install openclipart-svg openclipart-png

Captions are the SVG titles (``dc:title``), kept only when they are plain English: every word is a
WordNet lemma or a stop word, at least one is a noun, at most six words, and the title is not shared
by more than two drawings (author names and series titles are). The PNG rendering of each SVG comes
from ``openclipart-png``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

SVG_ROOT = Path("/usr/share/openclipart/svg")
PNG_ROOT = Path("/usr/share/openclipart/png")
STOP = {"a", "an", "the", "of", "on", "in", "with", "and", "for", "to", "at", "by", "from", "or", "its", "his", "her"}
EXCLUDE = {"flags", "buttons", "icons", "maps"}  # not everyday things: a flag's name is not a description of it
GENERIC = {"clipart", "clip", "art", "icon", "button", "pattern", "symbol", "sign", "logo", "design", "element", "set", "various",
           "simple", "image", "picture", "drawing", "cartoon", "illustration", "graphic", "frame", "border", "background", "texture"}


def _wordnet():
    from eval.metrics import ensure_wordnet

    ensure_wordnet()
    from nltk.corpus import wordnet

    return wordnet


def build(cache: Path | None = None) -> list[dict]:
    if cache and cache.exists():
        return json.loads(cache.read_text())
    wn = _wordnet()
    items = []
    for svg in sorted(SVG_ROOT.rglob("*.svg")):
        png = PNG_ROOT / svg.relative_to(SVG_ROOT).with_suffix(".png")
        if not png.exists() or EXCLUDE & set(svg.relative_to(SVG_ROOT).parts):
            continue
        head = svg.read_text(errors="ignore")[:30000]
        m = re.search(r"<dc:title>([^<]*)</dc:title>", head)
        if m and m.group(1).strip():
            items.append({"png": str(png), "title": " ".join(m.group(1).split())})
    counts = Counter(i["title"].lower() for i in items)
    keep, seen = [], set()
    for it in items:
        title = it["title"]
        words = [w for w in re.split(r"[\s\-_]+", title.lower()) if w]
        if not 1 <= len(words) <= 6 or counts[title.lower()] > 2 or title.lower() in seen:
            continue
        if not all(w.isalpha() and (w in STOP or wn.synsets(w)) for w in words):
            continue
        content = [w for w in words if w not in STOP]
        if not content or all(w in GENERIC for w in content) or not any(wn.synsets(w, pos="n") for w in content):
            continue
        seen.add(title.lower())
        keep.append({"png": it["png"], "caption": title})
    random.Random(7).shuffle(keep)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(keep, indent=0))
    return keep


if __name__ == "__main__":
    data = build()
    print(len(data))
    for d in data[:40]:
        print(d["caption"], "|", d["png"].split("/png/")[1])
