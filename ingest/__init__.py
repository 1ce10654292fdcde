"""Ingestion: files in, units out, written through ``indexes``."""
