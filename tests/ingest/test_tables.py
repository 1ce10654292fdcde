"""Tables without rulings are found from the PDF's text runs, cell by cell; prose columns are not tables."""

from __future__ import annotations

import pytest

from ingest.parse import DirectoryImageSink, parse_document
from ingest.table_structure import weights_path
from ingest.tables import Run, aligned_tables
from tests.fixturegen import BORDERLESS, SPANNED_ROWS, make_borderless_table_report, make_spanned_table_pdf, make_two_column_report


def test_a_borderless_table_yields_its_cells_in_rows_and_columns(tmp_path, settings):
    pdf = make_borderless_table_report(tmp_path / "borderless.pdf")
    doc = parse_document(pdf.read_bytes(), "borderless.pdf", settings, DirectoryImageSink(tmp_path / "blobs"))
    tables = [u for u in doc.units if u.type == "table"]
    assert len(tables) == 1
    table = tables[0]
    assert table.meta["rows"] == BORDERLESS
    assert table.caption == "Table 2: Households recycling by region, 2023."
    assert "<th>Share recycling</th>" in table.html and "<td>102,400</td>" in table.html
    body = " ".join(u.text for u in doc.units if u.type == "text")
    assert "168,860" not in body and "collection there is weekly" in body  # the cells left the prose, nothing else did


def test_two_columns_of_prose_are_not_a_table(tmp_path, settings):
    pdf = make_two_column_report(tmp_path / "two.pdf")
    doc = parse_document(pdf.read_bytes(), "two.pdf", settings, DirectoryImageSink(tmp_path / "blobs"))
    assert not [u for u in doc.units if u.type == "table"]


def _grid(rows, x0=50.0, widths=(120, 60, 60), y0=100.0, h=9.0, step=14.0):
    runs = []
    for i, row in enumerate(rows):
        x = x0
        for text, w in zip(row, widths):
            if text:
                runs.append(Run(text, [x, y0 + i * step, x + min(w - 20, 6 * len(text)), y0 + i * step + h]))
            x += w
    return runs


def test_a_bulleted_list_beside_text_is_not_a_table():
    rows = [["•", "Solar panels on every school roof"], ["•", "A bus lane on the ring road"], ["•", "Weekly glass collection"]]
    assert aligned_tables(_grid(rows, widths=(20, 300))) == []


def test_an_empty_cell_keeps_its_column():
    rows = [["Site", "2022", "2023"], ["North", "12", "15"], ["South", "", "9"], ["East", "7", "8"]]
    [table] = aligned_tables(_grid(rows))
    assert table.rows == rows


def test_a_table_continued_on_the_next_page_is_one_table(tmp_path, settings):
    from ingest.parse import parse_blocks
    from tests.fixturegen import LONG_TABLE, make_continued_table_pdf

    pdf = make_continued_table_pdf(tmp_path / "long.pdf")
    _, blocks = parse_blocks(pdf.read_bytes(), "long.pdf", settings)
    tables = [b for b in blocks if b.kind == "table"]
    assert len(tables) == 1
    assert tables[0].rows == LONG_TABLE  # the repeated header once
    assert tables[0].meta["pages"] == [1, 2] and tables[0].page == 1


def _table_units(pdf, settings, tmp_path):
    doc = parse_document(pdf.read_bytes(), pdf.name, settings, DirectoryImageSink(tmp_path / "blobs"))
    return doc, [u for u in doc.units if u.type == "table"]


@pytest.mark.parametrize("ruled", [True, False], ids=["ruled", "borderless"])
def test_the_structure_model_reads_spans_and_wrapped_cells(tmp_path, settings, ruled):
    if weights_path(settings) is None:
        pytest.skip("slanet-plus.onnx missing: run `mmrag models fetch` (make install does)")
    pdf = make_spanned_table_pdf(tmp_path / f"spanned-{ruled}.pdf", ruled)
    doc, tables = _table_units(pdf, settings, tmp_path)
    assert len(tables) == 1
    table = tables[0]
    assert table.meta["table_structure"] == "slanet-plus"
    # the text form folds the two header rows into one and keeps the wrapped label in one cell
    assert table.meta["rows"] == SPANNED_ROWS
    assert '<th rowspan="2">Region</th>' in table.html
    assert table.html.count('colspan="2"') == 2 and "<th>Q1</th>" in table.html
    assert "<td>Coastal towns and the outer islands</td>" in table.html
    assert "2023 Q2" in table.text and "West | 5 | 6 | 8 | 9" in table.text
    body = " ".join(u.text for u in doc.units if u.type == "text")
    assert "outer islands" not in body and "most on the coast" in body


def test_without_the_structure_model_the_rules_keep_every_cell(tmp_path, settings):
    pdf = make_spanned_table_pdf(tmp_path / "spanned.pdf", ruled=False)
    _, tables = _table_units(pdf, settings.model_copy(update={"table_model": "none"}), tmp_path)
    assert len(tables) == 1 and "table_structure" not in tables[0].meta
    cells = {c for row in tables[0].meta["rows"] for c in row if c}
    assert {"2022", "2023", "Region", "Q1", "North", "25", "West", "9"} <= cells


def test_a_table_on_a_scanned_page_is_structured_from_the_ocr_words(tmp_path, settings):
    from tests.fixturegen import make_scanned_table_pdf

    if weights_path(settings) is None:
        pytest.skip("slanet-plus.onnx missing: run `mmrag models fetch` (make install does)")
    pdf = make_scanned_table_pdf(tmp_path / "scan.pdf")
    _, tables = _table_units(pdf, settings.model_copy(update={"scan_layout": True}), tmp_path)
    assert len(tables) == 1 and tables[0].meta["table_finder"] == "layout"
    assert tables[0].meta["rows"] == SPANNED_ROWS  # every word read by OCR, in its cell
    assert '<th colspan="2">2023</th>' in tables[0].html
