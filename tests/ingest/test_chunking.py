from ingest.blocks import Block
from ingest.chunking import Chunker, count_tokens, maxsim_texts, split_sentences


def sink(data, ext):
    return f"/dev/null/{len(data)}.{ext}"


def test_chunks_respect_size_and_sentence_boundaries():
    sentences = [f"Sentence number {i} talks about topic {i} in detail." for i in range(60)]
    blocks = [Block("heading", "Intro", level=1), Block("paragraph", " ".join(sentences))]
    units = Chunker(chunk_tokens=50).units(blocks, sink)
    assert len(units) > 3
    for u in units:
        assert count_tokens(u.text) <= 50
        assert u.text.endswith(".") and u.heading == ["Intro"]
    assert " ".join(u.text for u in units) == " ".join(sentences)


def test_heading_path_nests_and_pops():
    blocks = [Block("heading", "A", level=1), Block("heading", "A1", level=2), Block("paragraph", "x."),
              Block("heading", "B", level=1), Block("paragraph", "y.")]
    units = Chunker().units(blocks, sink)
    assert [u.heading for u in units] == [["A", "A1"], ["B"]]


def test_chunks_do_not_span_pages():
    blocks = [Block("paragraph", "One.", page=1), Block("paragraph", "Two.", page=2)]
    assert [u.page for u in Chunker().units(blocks, sink)] == [1, 2]


def test_big_table_is_split_by_rows_with_header_repeated():
    rows = [["name", "value"]] + [[f"row{i}", str(i)] for i in range(100)]
    units = Chunker(table_max_tokens=60).units([Block("table", rows=rows, caption="Table 2: values")], sink)
    assert len(units) > 2
    assert all(u.meta["rows"][0] == ["name", "value"] and u.caption == "Table 2: values" for u in units)
    assert [r for u in units for r in u.meta["rows"][1:]] == rows[1:]
    assert units[0].meta["part"] == f"1/{len(units)}"


def test_table_caption_from_adjacent_paragraph():
    blocks = [Block("paragraph", "Table 3: Soil samples"), Block("table", rows=[["a", "b"], ["1", "2"]])]
    table = [u for u in Chunker().units(blocks, sink) if u.type == "table"][0]
    assert table.caption == "Table 3: Soil samples"


def test_image_gets_caption_alt_and_nearby_text():
    blocks = [Block("paragraph", "The harbour at dawn."), Block("image", image=b"x", alt="boats"),
              Block("paragraph", "Figure 2: Fishing boats")]
    image = [u for u in Chunker().units(blocks, sink) if u.type == "image"][0]
    assert image.caption == "Figure 2: Fishing boats" and image.meta["alt"] == "boats"
    assert "harbour" in image.meta["nearby_text"] and "boats" in image.text


def test_chinese_sentences_split_and_count():
    assert split_sentences("第一句。第二句！第三句") == ["第一句。", "第二句！", "第三句"]
    assert count_tokens("长江abc") == 3


def test_maxsim_texts_are_sentences_then_adjacent_pairs():
    text = "The Rhine rises in the Alps. It flows north. Its largest city is Cologne."
    sentences = ["The Rhine rises in the Alps.", "It flows north.", "Its largest city is Cologne."]
    assert maxsim_texts(text) == sentences
    assert maxsim_texts(text, windows=True) == sentences + [
        "The Rhine rises in the Alps. It flows north.", "It flows north. Its largest city is Cologne."]
    assert maxsim_texts("One sentence only.", windows=True) == []  # the unit's own vector serves
    assert maxsim_texts("第一句。第二句！", windows=True)[-1] == "第一句。第二句！"  # no space between CJK sentences
