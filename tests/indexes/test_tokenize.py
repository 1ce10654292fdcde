"""term_finder must agree with tokenising and intersecting, which it replaces on the query path."""

from indexes.tokenize import term_finder, tokenize

TEXTS = [
    "The U.S. Navy's ship, USS Maine, sank in 1898; Maine-class ships followed.",
    "Über den Fluss: Zürich's bridges (ca. 1850) and the über-bridge.",
    "snake_case names and file.txt, then e-mail and email.",
    "北京大学 was founded in 1898 in Beijing 北京.",
    "",
]


def test_term_finder_matches_tokenize_and_intersect():
    queries = ["Which ship sank in 1898, the Maine?", "über Zürich bridges", "snake_case email file txt",
               "北京 1898 founded", "mail"]
    for query in queries:
        terms = list(dict.fromkeys(tokenize(query)))
        holds = term_finder(terms)
        for text in TEXTS:
            assert holds(text) == set(terms) & set(tokenize(text)), (query, text)


def test_term_finder_does_not_match_inside_words():
    holds = term_finder(["mail", "ship"])
    assert holds("e-mail shipping") == {"mail"}
    assert holds("Emails about ships") == set()


def test_per_sentence_equals_one_call_per_sentence():
    from ingest.chunking import split_sentences

    for query in ["Which ship sank in 1898, the Maine?", "über Zürich bridges", "北京 1898 founded"]:
        finder = term_finder(list(dict.fromkeys(tokenize(query))))
        for text in TEXTS + [" ".join(TEXTS)]:
            sentences = split_sentences(text)
            assert finder.per_sentence(text, sentences) == [finder(s) for s in sentences]
            assert finder.per_sentence(text, sentences) == [set(finder.wanted) & set(tokenize(s)) for s in sentences]
