"""Tables without rulings are found from the PDF's text runs, cell by cell; prose columns are not tables."""

from __future__ import annotations

from ingest.parse import DirectoryImageSink, parse_document
from ingest.tables import Run, aligned_tables
from tests.fixturegen import BORDERLESS, make_borderless_table_report, make_two_column_report


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
