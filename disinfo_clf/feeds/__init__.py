"""Read news inputs as one stream of :class:`Record`: JSONL, CSV, RSS/Atom, folders of text and
HTML, stdin, and (with pyarrow) Parquet files and URIs. Every scoring engine reads through here."""
from __future__ import annotations

from .readers import FORMATS, STDIN, check_inputs, normalize_format, read_input, read_records
from .records import InputError, Record

__all__ = ["FORMATS", "STDIN", "InputError", "Record", "check_inputs", "normalize_format", "read_input", "read_records"]
