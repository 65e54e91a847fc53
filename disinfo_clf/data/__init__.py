"""Documents and database exports → cases, labelled spans and skip reports."""
from __future__ import annotations

from .cases import SPAN_LABELS, Case, Skipped, Span
from .documents import parse_document, parse_file, read_document, segment
from .exports import load_database_csv, load_review_csv
from ..text.sentences import split_sentences

__all__ = [
    "SPAN_LABELS",
    "Case",
    "Skipped",
    "Span",
    "load_database_csv",
    "load_review_csv",
    "parse_document",
    "parse_file",
    "read_document",
    "segment",
    "split_sentences",
]
