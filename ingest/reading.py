"""Reading order on a page, and running headers and footers across pages.

Order is a recursive XY-cut over the items' boxes: where a vertical gutter runs through a stretch of
the page with nothing crossing it, the stretch is read column by column; otherwise it is cut into
bands at the horizontal gaps, read top to bottom. Columns are tried first: the paragraph gaps of two
columns often line up, and cutting there first would read the page across the gutter. A title or a
figure that spans the columns blocks the gutter; the gutter is then looked for among the narrower
items, and the spanning ones cut the page into bands, each read column by column.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

MAX_DEPTH = 40  # nesting of cuts; real pages need a handful
MIN_GUTTER = 6.0  # points: narrower white space between boxes is a word gap, not a gutter
MARGIN = 0.09  # of the page height: a block wholly above or below this is in the header or footer zone
_PAGE_NUMBER = re.compile(r"^(page\s*)?[\divxlc]{1,6}(\s*(of|/)\s*\d{1,5})?$|^[-–—]\s*\d{1,5}\s*[-–—]$", re.I)


def reading_order(items: Sequence[T], box: Callable[[T], Sequence[float] | None]) -> list[T]:
    """``items`` in reading order by their boxes (x0, y0, x1, y1, top-left origin); items without a box
    keep their place after the last boxed item before them."""
    boxed = [(list(box(it)), k, it) for k, it in enumerate(items) if box(it)]
    if len(boxed) < 2:
        return list(items)
    ordered = [it for _, _, it in _cut(boxed)]
    placed = set(map(id, ordered))
    out: list[T] = []
    k = 0
    for it in items:  # the unboxed keep their slot relative to the boxed ones
        if id(it) in placed:
            out.append(ordered[k])
            k += 1
        else:
            out.append(it)
    return out


def _gaps(spans: list[tuple[float, float]], min_gap: float) -> list[float]:
    """Midpoints of the gaps of at least ``min_gap`` between merged intervals."""
    spans = sorted(spans)
    cuts = []
    end = spans[0][1]
    for a, b in spans[1:]:
        if a - end >= min_gap:
            cuts.append((end + a) / 2)
        end = max(end, b)
    return cuts


def _cut(boxed: list, depth: int = 0) -> list:
    if len(boxed) < 2 or depth > MAX_DEPTH:  # (past it: the sort at the end)
        return boxed if len(boxed) < 2 else _sorted(boxed)
    gutters = _gaps([(b[0], b[2]) for b, _, _ in boxed], MIN_GUTTER)
    if gutters:  # columns with nothing across them: left to right, each read on its own
        return [e for g in _split(boxed, gutters, 0) for e in _cut(g, depth + 1)]
    left, right = min(b[0] for b, _, _ in boxed), max(b[2] for b, _, _ in boxed)
    narrow = [e for e in boxed if e[0][2] - e[0][0] <= 0.55 * (right - left)]
    gutters = _gaps([(b[0], b[2]) for b, _, _ in narrow], MIN_GUTTER) if len(narrow) > 1 else []
    if gutters:
        # columns interrupted by items that span them (a title, a wide figure): those items cut the
        # page into bands; each band between them is read column by column
        spanning = [e for e in boxed if any(e[0][0] < g < e[0][2] for g in gutters)]
        if spanning:  # (a wide item may narrow the gap without crossing its middle: then bands below)
            out: list = []
            run: list = []
            for e in sorted(boxed, key=lambda e: (e[0][1], e[0][0])):
                if any(e is s for s in spanning):
                    out.extend(_cut(run, depth + 1))
                    out.append(e)
                    run = []
                else:
                    run.append(e)
            return out + _cut(run, depth + 1)
    bands = _gaps([(b[1], b[3]) for b, _, _ in boxed], 0.01)
    if bands:  # one column: top to bottom
        return [e for g in _split(boxed, bands, 1) for e in _cut(g, depth + 1)]
    return _sorted(boxed)


def _sorted(boxed: list) -> list:
    # nothing separates them (overlapping boxes): top to bottom, then left to right, then as given
    return sorted(boxed, key=lambda e: (round(e[0][1] / 4), e[0][0], e[1]))


def _split(boxed: list, cuts: list[float], axis: int) -> list[list]:
    groups: list[list] = [[] for _ in range(len(cuts) + 1)]
    for entry in boxed:
        centre = (entry[0][axis] + entry[0][axis + 2]) / 2
        groups[sum(1 for c in cuts if centre > c)].append(entry)
    return groups


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def drop_running_lines(blocks: list, page_heights: dict[int, float], n_pages: int) -> list:
    """Remove page numbers and the running headers and footers: short text blocks in the top or bottom
    margin whose words (digits aside) repeat on at least a quarter of the pages (three at least).
    Figures and tables stay, wherever they are."""
    def zone(b) -> str | None:
        h = page_heights.get(b.page or 0)
        if not h or not b.bbox or b.kind not in ("paragraph", "heading") or len(b.text) > 200:
            return None
        if b.bbox[3] <= MARGIN * h:
            return "top"
        if b.bbox[1] >= (1 - MARGIN) * h:
            return "bottom"
        return None

    pages_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    for b in blocks:
        z = zone(b)
        if z:
            pages_of[(z, _key(b.text))].add(b.page)
    repeat = max(3, n_pages // 4)
    out = []
    for b in blocks:
        z = zone(b)
        if z and (_PAGE_NUMBER.match(b.text.strip()) or len(pages_of[(z, _key(b.text))]) >= repeat):
            continue
        out.append(b)
    return out
