"""Evaluation: retrieval metrics, BLEU/METEOR, reports."""
