"""Native charts in PPTX and DOCX: their data (categories, series, values) becomes a table unit."""

from __future__ import annotations

import pytest

from ingest.charts import read_chart
from ingest.parse import DirectoryImageSink, parse_document
from tests.fixturegen import CHART_DATA, make_chart_docx, make_chart_pptx

EXPECTED = [["", "Wind", "Solar"], ["2020", "12.5", "3"], ["2021", "14", "5.5"], ["2022", "17.25", "9"]]


@pytest.mark.parametrize("make,name", [(make_chart_pptx, "deck.pptx"), (make_chart_docx, "report.docx")])
def test_a_native_chart_becomes_a_table_of_its_data(make, name, tmp_path, settings):
    path = make(tmp_path / name)
    doc = parse_document(path.read_bytes(), name, settings, DirectoryImageSink(tmp_path / "blobs"))
    tables = [u for u in doc.units if u.type == "table"]
    assert len(tables) == 1
    chart = tables[0]
    assert chart.meta["rows"] == EXPECTED and chart.meta["chart"] == "barChart"
    assert chart.caption == "Chart: Generation in TWh"
    assert "17.25" in chart.text and "Solar" in chart.html
    assert list(CHART_DATA["series"]) == chart.meta["rows"][0][1:]
    if name.endswith(".docx"):  # in its place between the paragraphs
        kinds = [u.type for u in doc.units]
        assert kinds.index("table") > 0


def test_a_broken_chart_part_is_skipped():
    assert read_chart(b"<not xml") is None
    assert read_chart(b'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"/>') is None
