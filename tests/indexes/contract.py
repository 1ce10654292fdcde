"""The store contract: what every backend of ``indexes.base.DocumentStore`` must do, whatever it is
built on. A backend's test module subclasses :class:`StoreContract` and gives the ``store`` fixture
(a fresh, empty store) and ``reopen`` (another handle on the same data, as a second process or a
restarted server would have). Vectors come from :class:`tests.fakes.HashEmbedder`, so no model loads.
"""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexes.base import DocumentStore
from indexes.records import NewDocument, NewUnit, StagedVectors, UnitFilter
from indexes.tokenize import QUESTION_WORDS, tokenize
from mmrag.errors import ModelMismatch
from mmrag.units import Unit
from tests.fakes import HashEmbedder

EMBED = HashEmbedder(32)
PASSAGES = {
    "tides.md": ["The tide rises twice a day at the harbour. The moon pulls the sea.",
                 "Spring tides come at full moon and new moon."],
    "lighthouse.md": ["The harbour lighthouse was built in 1872 from granite.", "Its lamp is lit every evening."],
    "panels.pdf": ["Panel cleaning | Twice a year", "Inverter check | Every month"],
}
TYPES = {"panels.pdf": "table"}


def new_units(name: str, texts: list[str] | None = None, images: bool = False) -> list[NewUnit]:
    texts = texts or PASSAGES[name]
    out = []
    for i, text in enumerate(texts):
        unit = Unit(TYPES.get(name, "text"), text, page=i + 1, bbox=[10.0, 20.0 + i, 300.0, 60.0 + i], heading=[name, "Part"],
                    position=i, html="<table><tr><td>x</td></tr></table>" if name in TYPES else None,
                    meta={"n": i, "name": name})
        vec = EMBED.embed([unit.search_text()])[0]
        sentences = EMBED.embed([s + "." for s in text.split(". ") if s]) if ". " in text else None
        out.append(NewUnit(unit, vec, vec[:8] / np.linalg.norm(vec[:8]) if images and i == 0 else None, sentences))
    return out


def new_document(cid: int, name: str, units: list[NewUnit] | None = None, content_hash: str = "h1") -> NewDocument:
    units = new_units(name) if units is None else units
    return NewDocument(cid, f"/docs/{name}", name, content_hash, name.rsplit(".", 1)[-1], len(units), 100, units)


class StoreContract:
    """Every test gets an empty store; none depends on another."""

    @pytest.fixture
    def store(self) -> DocumentStore:
        raise NotImplementedError  # a backend's module gives it

    @pytest.fixture
    def reopen(self, store):
        raise NotImplementedError  # a callable: another handle on the same store

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def fill(store) -> tuple[int, dict[str, int], dict[str, list[int]]]:
        cid = store.collection_id("c", create=True)
        store.bind_models(cid, {"text": EMBED.name, "image": "none"})
        docs, ids = {}, {}
        for name in PASSAGES:
            docs[name], ids[name] = store.commit_document(new_document(cid, name))
        store.flush(cid)
        return cid, docs, ids

    @staticmethod
    def searchable(store, cid, query="harbour tide moon lighthouse lamp panel inverter", k=100) -> set[int]:
        return set(store.keyword_scores(cid, query).top(k)[0].tolist())

    # -- the catalogue -----------------------------------------------------------------------
    def test_is_a_document_store(self, store):
        assert isinstance(store, DocumentStore)

    def test_collections_are_created_once_and_listed_with_counts(self, store):
        assert store.collection_id("c") is None
        cid = store.collection_id("c", create=True)
        assert store.collection_id("c", create=True) == cid and store.collection_name(cid) == "c"
        store.commit_document(new_document(cid, "tides.md"))
        (listed,) = [c for c in store.collections() if c.name == "c"]
        assert (listed.id, listed.documents, listed.units) == (cid, 1, 2)

    def test_a_commit_is_read_back_whole_with_its_provenance(self, store):
        cid = store.collection_id("c", create=True)
        doc_id, ids = store.commit_document(new_document(cid, "panels.pdf"))
        doc = store.document(doc_id)
        assert (doc.status, doc.n_units, doc.file_name, doc.source, doc.collection_id) == ("done", 2, "panels.pdf", "/docs/panels.pdf", cid)
        assert store.document_by_source(cid, "/docs/panels.pdf").id == doc_id
        units = store.document_units(doc_id)
        assert [u.id for u in units] == ids and [u.position for u in units] == [0, 1]
        u = store.units([ids[1]])[ids[1]]
        assert (u.type, u.page, u.bbox, u.heading, u.text, u.meta) == (
            "table", 2, [10.0, 21.0, 300.0, 61.0], ["panels.pdf", "Part"], "Inverter check | Every month", {"n": 1, "name": "panels.pdf"})
        assert u.html.startswith("<table>") and u.document_id == doc_id and u.collection_id == cid
        assert store.texts(ids) == {ids[0]: "Panel cleaning | Twice a year", ids[1]: "Inverter check | Every month"}
        assert set(store.unit_ids(cid).tolist()) == set(ids)

    def test_replacing_a_document_swaps_all_its_units(self, store):
        cid, docs, ids = self.fill(store)
        new = new_units("tides.md", ["Neap tides are weak."])
        doc_id, new_ids = store.commit_document(new_document(cid, "tides.md", new, content_hash="h2"))
        assert doc_id == docs["tides.md"] and store.document(doc_id).content_hash == "h2"
        assert not set(ids["tides.md"]) & set(store.unit_ids(cid).tolist())
        assert store.units(ids["tides.md"]) == {}
        assert self.searchable(store, cid, "spring tides moon neap") & set(ids["tides.md"]) == set()
        assert new_ids[0] in self.searchable(store, cid, "neap")
        got, _ = store.vector_search(cid, "text", EMBED.embed(["Spring tides come at full moon"])[0], 10)
        assert not set(got.tolist()) & set(ids["tides.md"])

    def test_deletes_remove_a_document_and_then_a_collection_everywhere(self, store):
        cid, docs, ids = self.fill(store)
        store.delete_document(docs["lighthouse.md"])
        assert store.document(docs["lighthouse.md"]) is None and store.units(ids["lighthouse.md"]) == {}
        assert not self.searchable(store, cid) & set(ids["lighthouse.md"])
        assert not set(store.vector_search(cid, "text", EMBED.embed(["lighthouse granite"])[0], 10)[0].tolist()) & set(ids["lighthouse.md"])
        with pytest.raises(KeyError):
            store.delete_document(docs["lighthouse.md"])
        store.delete_collection(cid)
        assert store.collection_id("c") is None and store.document(docs["tides.md"]) is None

    def test_a_failure_is_listed_and_an_earlier_good_version_stays(self, store):
        cid, docs, ids = self.fill(store)
        failed = store.record_failure(cid, "/docs/broken.pdf", "broken.pdf", "hb", "encrypted: needs a password", 12)
        doc = store.document(failed)
        assert (doc.status, doc.error, doc.n_units) == ("failed", "encrypted: needs a password", 0)
        again = store.record_failure(cid, "/docs/tides.md", "tides.md", "h9", "cannot parse")
        assert again == docs["tides.md"]
        doc = store.document(again)
        assert doc.status == "done" and "cannot parse" in doc.error
        assert set(ids["tides.md"]) <= self.searchable(store, cid)
        assert {d.status for d in store.documents(cid)} == {"done", "failed"}

    def test_models_are_bound_by_the_first_vectors(self, store):
        cid = store.collection_id("c", create=True)
        store.bind_models(cid, {"text": EMBED.name, "image": "none"})
        store.commit_document(new_document(cid, "tides.md"))
        assert store.models(cid)["text"] == EMBED.name
        with pytest.raises(ModelMismatch, match="re-embed"):
            store.bind_models(cid, {"text": "other-model", "image": "none"})
        store.bind_models(cid, {"text": EMBED.name, "image": "img-model"})  # no image vectors yet: recorded
        assert store.models(cid)["image"] == "img-model"

    def test_a_reembedding_swaps_every_vector_at_once_or_none(self, store):
        cid, _docs, ids = self.fill(store)
        all_ids = [int(i) for i in store.unit_ids(cid)]
        before = store.vectors(all_ids, "text")[1].copy()
        store.clear_staged(cid)
        flipped = {i: -v for i, v in zip(store.vectors(all_ids, "text")[0].tolist(), before)}
        store.stage_vectors([StagedVectors(all_ids[0], flipped[all_ids[0]], None, None)])
        with pytest.raises(RuntimeError):  # one unit staged of six: nothing changes
            store.swap_staged(cid, {"text": "flipped", "image": "none"})
        np.testing.assert_array_equal(store.vectors(all_ids, "text")[1], before)
        assert store.models(cid)["text"] == EMBED.name
        store.stage_vectors([StagedVectors(i, flipped[i], None, None) for i in all_ids])
        assert store.swap_staged(cid, {"text": "flipped", "image": "none"}) == len(all_ids)
        np.testing.assert_allclose(store.vectors(all_ids, "text")[1], -before, atol=1e-6)
        assert store.models(cid)["text"] == "flipped"
        query = EMBED.embed(["granite lighthouse"])[0]
        got, scores = store.vector_search(cid, "text", query, 1)
        assert got[0] not in ids["lighthouse.md"]  # searches follow the new vectors at once

    # -- search and features -----------------------------------------------------------------
    def test_keyword_scores_equal_rank_bm25_for_search_and_lookup(self, store):
        cid, _docs, _ids = self.fill(store)
        units = store.units(store.unit_ids(cid))
        order = sorted(units)
        reference = BM25Okapi([tokenize(units[i].search_text()) for i in order])
        for query in ("harbour tide", "moon moon lamp", "Twice a year", "nothing zzz"):
            scores = store.keyword_scores(cid, query)
            expected = reference.get_scores(tokenize(query))
            np.testing.assert_allclose(scores.of(np.array(order)), expected, rtol=1e-6, atol=1e-9)
            top_ids, top_scores = scores.top(3)
            matched = [i for i, u in zip(order, (units[i] for i in order)) if set(tokenize(query)) & set(tokenize(u.search_text()))]
            assert set(top_ids.tolist()) <= set(matched) and len(top_ids) == min(3, len(matched))
            assert list(top_scores) == sorted(top_scores, reverse=True)

    def test_coverage_is_the_idf_weighted_share_of_query_terms_held(self, store):
        cid, _docs, ids = self.fill(store)
        scores = store.keyword_scores(cid, "When was the harbour lighthouse built?")
        assert set(scores.coverage_weights) == {t for t in tokenize("harbour lighthouse built") if t not in QUESTION_WORDS}
        cov = scores.coverage_of(np.array(ids["lighthouse.md"] + ids["panels.pdf"]))
        assert cov[0] == pytest.approx(1.0) and cov[2] == 0.0 and 0.0 <= cov[1] < 1.0
        assert scores.tokenizer("Harbour LIGHTHOUSE") == ["harbour", "lighthouse"]

    def test_vector_search_returns_inner_products_of_stored_vectors(self, store):
        cid, _docs, ids = self.fill(store)
        query = EMBED.embed(["the lighthouse lamp"])[0]
        got, scores = store.vector_search(cid, "text", query, 4)
        have, matrix = store.vectors(store.unit_ids(cid), "text")
        exact = matrix @ query
        best = have[np.argsort(-exact)[:4]]
        assert got.tolist() == best.tolist() and got[0] in ids["lighthouse.md"]
        np.testing.assert_allclose(scores, np.sort(exact)[::-1][:4], rtol=1e-5, atol=1e-5)
        assert store.vector_count(cid, "text") == 6 and store.vector_count(cid, "image") == 0
        assert store.has_vectors(cid, "text") and not store.has_vectors(cid, "image")
        assert store.vector_search(cid, "image", query[:8], 4)[0].tolist() == []

    def test_sentence_vectors_come_back_for_units_of_several_sentences(self, store):
        cid, _docs, ids = self.fill(store)
        got = store.sentence_vectors(ids["tides.md"] + ids["panels.pdf"])
        assert set(got) == {ids["tides.md"][0]}
        expected = EMBED.embed(["The tide rises twice a day at the harbour.", "The moon pulls the sea."])
        np.testing.assert_allclose(got[ids["tides.md"][0]], expected, atol=2e-3)  # float16 is enough for max-sim

    def test_image_vectors_are_searched_apart_from_text(self, store):
        cid = store.collection_id("c", create=True)
        _, ids = store.commit_document(new_document(cid, "lighthouse.md", new_units("lighthouse.md", images=True)))
        assert store.vector_count(cid, "image") == 1
        have, matrix = store.vectors(ids, "image")
        assert have.tolist() == [ids[0]] and matrix.shape == (1, 8)
        assert store.vector_search(cid, "image", matrix[0], 5)[0].tolist() == [ids[0]]

    @pytest.mark.parametrize("where", ["types", "documents", "both", "none-allowed"])
    def test_filters_apply_inside_every_search(self, store, where):
        cid, docs, ids = self.fill(store)
        filters = {"types": UnitFilter.of(types=["table"]), "documents": UnitFilter.of(document_ids=[docs["tides.md"]]),
                   "both": UnitFilter.of(types=["text"], document_ids=[docs["tides.md"], docs["panels.pdf"]]),
                   "none-allowed": UnitFilter.of(document_ids=[])}[where]
        allowed = {"types": ids["panels.pdf"], "documents": ids["tides.md"], "both": ids["tides.md"], "none-allowed": []}[where]
        assert sorted(store.unit_ids(cid, filters).tolist()) == sorted(allowed)
        query = "harbour tide moon lighthouse lamp panel inverter twice"
        kw = store.keyword_scores(cid, query, filters).top(10)[0]
        vec = store.vector_search(cid, "text", EMBED.embed([query])[0], 10, filters)[0]
        assert sorted(kw.tolist()) == sorted(allowed) and sorted(vec.tolist()) == sorted(allowed)

    # -- across handles ------------------------------------------------------------------------
    def test_another_handle_sees_commits_and_deletes(self, store, reopen):
        cid, docs, ids = self.fill(store)
        other = reopen()
        query = EMBED.embed(["granite lighthouse"])[0]
        assert other.vector_search(cid, "text", query, 1)[0][0] in ids["lighthouse.md"]
        _, extra = store.commit_document(new_document(cid, "more.md", new_units("lighthouse.md", ["A granite breakwater."])))
        assert extra[0] in set(other.keyword_scores(cid, "breakwater").top(5)[0].tolist())
        store.delete_document(docs["lighthouse.md"])
        assert not set(other.vector_search(cid, "text", query, 10)[0].tolist()) & set(ids["lighthouse.md"])
        assert other.document(docs["lighthouse.md"]) is None
        other.ping()
