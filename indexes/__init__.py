"""The stores: a SQLite docstore (the source of truth), FAISS vector indexes and a BM25 index.

``indexes`` imports neither ``ingest`` nor ``app``.
"""
