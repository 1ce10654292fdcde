"""Reading order follows the columns, and running headers, footers and page numbers leave the chunks."""

from __future__ import annotations

from types import SimpleNamespace

from ingest.parse import DirectoryImageSink, parse_blocks, parse_document
from ingest.reading import drop_running_lines, reading_order
from tests.fixturegen import COLUMN_TEXTS, make_two_column_report


def test_a_two_column_page_is_read_column_by_column(tmp_path, settings):
    pdf = make_two_column_report(tmp_path / "two.pdf")  # the right column is written first
    _, blocks = parse_blocks(pdf.read_bytes(), "two.pdf", settings)
    page1 = [b.text for b in blocks if b.page == 1]
    assert page1[0].startswith("Section 1: tidal power findings")
    starts = [next(k for k, t in enumerate(page1) if t.startswith(text.split()[0])) for text in COLUMN_TEXTS]
    assert starts == sorted(starts), page1  # Alpha, Bravo (left column), then Charlie, Delta (right)


def test_running_headers_footers_and_page_numbers_are_dropped(tmp_path, settings):
    pdf = make_two_column_report(tmp_path / "two.pdf")
    doc = parse_document(pdf.read_bytes(), "two.pdf", settings, DirectoryImageSink(tmp_path / "blobs"))
    text = "\n".join(u.text for u in doc.units)
    assert "Coastal Energy Review" not in text and "Regional Energy Office" not in text
    assert all(not line.strip().isdigit() for line in text.splitlines())
    for n in range(1, 5):  # the body of every page is still there
        assert f"Delta paragraph ends the right column with the storage plan for winter. (page {n})" in " ".join(text.split())


def _b(text, box, page=1, kind="paragraph"):
    return SimpleNamespace(text=text, bbox=box, page=page, kind=kind)


def test_a_figure_across_both_columns_cuts_the_page_into_bands():
    items = [_b("title", [50, 20, 550, 40]),
             _b("left top", [50, 60, 280, 200]), _b("right top", [320, 60, 550, 200]),
             _b("figure", [50, 220, 550, 400], kind="image"),
             _b("left bottom", [50, 420, 280, 700]), _b("right bottom", [320, 420, 550, 560]),
             _b("right bottom 2", [320, 580, 550, 700])]
    shuffled = [items[k] for k in (5, 3, 1, 6, 0, 4, 2)]
    assert [b.text for b in reading_order(shuffled, lambda b: b.bbox)] == [b.text for b in items]


def test_one_column_keeps_top_to_bottom_and_unboxed_items_keep_their_slot():
    items = [_b("one", [50, 20, 550, 40]), _b("no box", None), _b("two", [50, 60, 550, 80]), _b("three", [60, 100, 300, 120])]
    assert [b.text for b in reading_order([items[2], items[1], items[0], items[3]], lambda b: b.bbox)] == \
        ["one", "no box", "two", "three"]


def test_a_header_on_only_two_pages_stays():
    blocks = [_b("Appendix A", [50, 10, 200, 30], page=p) for p in (1, 2)] + [_b("body", [50, 300, 500, 400], page=p) for p in range(1, 13)]
    kept = drop_running_lines(blocks, {p: 792.0 for p in range(1, 13)}, 12)
    assert sum(1 for b in kept if b.text == "Appendix A") == 2
    blocks.append(_b("12", [300, 770, 310, 780], page=3))
    assert "12" not in [b.text for b in drop_running_lines(blocks, {p: 792.0 for p in range(1, 13)}, 12)]


def test_a_crowded_page_is_ordered_without_deep_recursion():
    # a staircase of boxes, each one a little wider than the last: every cut peels off one box
    items = [_b(f"b{k}", [300 - k, 10 * k, 300 + k + 1, 10 * k + 8]) for k in range(3000)]
    assert len(reading_order(items, lambda b: b.bbox)) == 3000
