"""Native Office charts (DrawingML chart parts, the same XML in DOCX and PPTX): their data, read
into a table unit. The numbers a chart draws are stored in the file; reading them beats guessing
them from pixels, and makes "what was the share in 2021?" answerable from the chart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lxml import etree

log = logging.getLogger(__name__)

C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
CHART_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/chart"
MAX_POINTS = 5000  # categories x series read from one chart


@dataclass
class ChartData:
    title: str | None
    kind: str  # barChart, lineChart, pieChart, ...
    rows: list[list[str]]  # header: "" then the series names; then one row per category


def _points(ref) -> dict[int, str]:
    """Index -> value of a c:cat / c:val / c:tx element (cached strings or numbers, or literals)."""
    if ref is None:
        return {}
    out = {}
    for pt in ref.iter(f"{C}pt"):
        v = pt.find(f"{C}v")
        if v is not None and v.text is not None:
            out[int(pt.get("idx", len(out)))] = v.text.strip()
        if len(out) >= MAX_POINTS:
            break
    return out


def _number(value: str) -> str:
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f.is_integer() else f"{f:.6g}"


def read_chart(xml: bytes) -> ChartData | None:
    """The chart's title, type and data table; None if it holds no series (or is not a chart part)."""
    try:
        # no entities, no network: a chart part is untrusted input like the rest of the file
        root = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except Exception as exc:  # a broken chart part loses the chart, not the document
        log.warning("a chart part could not be read (%s)", exc)
        return None
    chart = root.find(f"{C}chart")
    if chart is None:
        return None
    title_el = chart.find(f"{C}title")
    title = " ".join(t.text.strip() for t in title_el.iter(f"{A}t") if t.text and t.text.strip()) if title_el is not None else ""
    plot = chart.find(f"{C}plotArea")
    series, kinds = [], []
    for group in list(plot) if plot is not None else []:
        if not group.tag.endswith("Chart"):
            continue
        kinds.append(group.tag[len(C):])
        for ser in group.findall(f"{C}ser"):
            name = " ".join(_points(ser.find(f"{C}tx")).values()) or f"Series {len(series) + 1}"
            cats = _points(ser.find(f"{C}cat"))
            vals = _points(ser.find(f"{C}val")) or _points(ser.find(f"{C}yVal"))
            cats = cats or _points(ser.find(f"{C}xVal"))
            series.append((name, cats, vals))
    if not series:
        return None
    categories: dict[int, str] = {}
    for _, cats, vals in series:
        for i in sorted(set(cats) | set(vals)):
            categories.setdefault(i, cats.get(i, str(i + 1)))
    rows = [["", *(name for name, _, _ in series)]]
    for i, label in sorted(categories.items()):
        rows.append([label, *(_number(vals.get(i, "")) for _, _, vals in series)])
    return ChartData(title or None, "+".join(dict.fromkeys(kinds)), rows)


def chart_parts(element, part) -> list[bytes]:
    """The chart parts that a DOCX paragraph or PPTX graphic frame ``element`` refers to, in order."""
    out = []
    for ref in element.iter(f"{C}chart"):
        rid = ref.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
        if not rid:
            continue
        try:  # python-docx keeps a dict of related parts, python-pptx a lookup
            target = part.related_parts[rid] if hasattr(part, "related_parts") else part.related_part(rid)
        except KeyError:
            continue
        out.append(target.blob)
    return out
