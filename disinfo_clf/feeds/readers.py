"""Read news inputs (JSONL, CSV, RSS/Atom, folders of text and HTML files, stdin) as one stream
of :class:`Record`, one per item, in a deterministic order.

A problem with one item (malformed JSON or CSV, a missing or non-text field, empty text, a
binary file, a broken feed, a bad folder entry) becomes a record with an ``error`` naming the
line and field and saying how to fix it; an entry that is skipped on purpose (a link out of an
input folder, a named pipe) becomes a record with only a ``warning``; where the reader had to
guess (the format of stdin, a CSV delimiter, a legacy encoding, sloppy quoting) the record says
so in its ``warning``. An input that cannot be read at all raises :class:`InputError`.
"""
from __future__ import annotations

import codecs
import itertools
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .csv_records import csv_rows, sniff_delimiter
from .folders import walk_folder
from .records import ID_FIELDS, TEXT_FIELDS, TITLE_FIELD, InputError, Record, from_mapping, join_title
from .rss import read_feed
from ..text.textio import (
    DecodedLines,
    binary_kind,
    byte_lines,
    decode_bytes,
    html_to_text,
    normalise_newlines,
    printable_path,
)

__all__ = ["FORMATS", "ID_FIELDS", "STDIN", "TEXT_FIELDS", "TITLE_FIELD", "InputError", "Record", "check_inputs",
           "decode_bytes", "html_to_text", "join_title", "normalize_format", "read_input", "read_records"]

logger = logging.getLogger(__name__)

STDIN = "-"
FORMATS = ("jsonl", "csv", "tsv", "feed", "folder", "text", "html", "lines")
"""``text``/``html``: a whole file is one item; ``lines``: one item per non-blank line."""
_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "rss": "feed", "atom": "feed", "xml": "feed",
            "dir": "folder", "txt": "text", "htm": "html"}
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
               ".xml": "feed", ".rss": "feed", ".atom": "feed", ".txt": "text", ".html": "html", ".htm": "html"}
_SNIFF_LINES = 20
_BINARY_SNIFF_BYTES = 8192
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def check_inputs(inputs: Sequence[str | Path]) -> None:
    """Raise :class:`InputError` unless every input exists and can be read."""
    if not inputs:
        raise InputError("no inputs given: name at least one file or folder, or '-' for stdin")
    for inp in inputs:
        if str(inp) == STDIN:
            continue
        path = Path(inp)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise InputError(f"{path}: permission denied (make it readable or pass another input)")


def read_records(inputs: Sequence[str | Path], *, text_field: str | None = None, id_field: str | None = None,
                 input_format: str | None = None) -> Iterator[Record]:
    """All records of ``inputs`` in order, with ids made unique (``x``, ``x#2``, ``x#3``...)."""
    inputs = [inputs] if isinstance(inputs, (str, Path)) else inputs
    check_inputs(inputs)
    yield from unique_ids(record for inp in inputs
                          for record in read_input(inp, text_field=text_field, id_field=id_field, input_format=input_format))


def unique_ids(records: Iterable[Record]) -> Iterator[Record]:
    """``records`` with repeated ids renamed ``x#2``, ``x#3``... (a record keeps its id the first time)."""
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    for record in records:
        if record.id in seen:
            base, n = record.id, next_suffix.get(record.id, 2)
            while f"{base}#{n}" in seen:
                n += 1
            next_suffix[base] = n + 1
            record.id = f"{base}#{n}"
        seen.add(record.id)
        yield record


def read_input(inp: str | Path, *, text_field: str | None = None, id_field: str | None = None,
               input_format: str | None = None) -> Iterator[Record]:
    """The records of one input (a file, a folder, or ``-`` for stdin); ids are not deduplicated."""
    source = "stdin" if str(inp) == STDIN else printable_path(inp)
    fmt = normalize_format(input_format) if input_format else None
    try:
        if source == "stdin":
            yield from read_stream(sys.stdin.buffer, source, fmt, text_field, id_field)
            return
        path = Path(inp)
        if path.is_dir():
            yield from _read_folder(path)
            return
        fmt = fmt or EXTENSIONS.get(path.suffix.lower())
        with path.open("rb") as stream:
            yield from read_stream(stream, source, fmt, text_field, id_field)
    except OSError as exc:
        raise InputError(f"{printable_path(exc.filename or source)}: cannot read: {exc.strerror or exc}") from exc


def normalize_format(name: str) -> str:
    """The canonical name of an input format (accepts aliases such as ``rss`` or ``ndjson``)."""
    fmt = _ALIASES.get(name.lower(), name.lower())
    if fmt not in FORMATS:
        raise InputError(f"unknown input format {name!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _binary_error(head: bytes, source: str) -> str | None:
    kind = binary_kind(head[:_BINARY_SNIFF_BYTES])
    if kind is None:
        return None
    what, fix = kind
    return f"{source}: {what}, not text: {fix.format(path=source)}"


def read_stream(stream: BinaryIO, source: str, fmt: str | None, text_field: str | None,
                 id_field: str | None) -> Iterator[Record]:
    head = stream.peek(_BINARY_SNIFF_BYTES) if hasattr(stream, "peek") else b""
    if fmt in ("feed", "text", "html"):
        yield from _read_whole(stream.read(), source, fmt)
        return
    if (error := _binary_error(head, source)) is not None:
        yield Record(source, None, source, None, error)
        return
    raw_lines = byte_lines(stream)
    head_lines: list[bytes] = []
    for raw in raw_lines:
        head_lines.append(raw)
        if raw.strip():
            break
    first = head_lines[-1] if head_lines else b""
    guess = None
    if fmt is None:
        if _bare_json_value(first):  # a number or string: JSON lines, or plain text that looks like JSON?
            head_lines += itertools.islice(raw_lines, _SNIFF_LINES)
        fmt, guess = _sniff(first, head_lines, text_field)
    raw_lines = itertools.chain(head_lines, raw_lines)
    if fmt == "jsonl":
        records = _read_json(first, raw_lines, source, text_field, id_field)
    elif fmt in ("csv", "tsv"):
        records = _read_csv(DecodedLines(raw_lines, source), source, "\t" if fmt == "tsv" else ",", text_field, id_field)
    elif fmt == "lines":
        records = _read_lines(DecodedLines(raw_lines, source), source)
    else:
        records = _read_whole(b"".join(raw_lines), source, fmt)
    yield from _warn_first(records, guess)


def _read_lines(lines: DecodedLines, source: str) -> Iterator[Record]:
    for text in lines:
        if text.strip():
            yield Record(f"{source}:{lines.lineno}", text.strip(), source, lines.lineno, warning=lines.take_warning())


def _warn_first(records: Iterable[Record], warning: str | None) -> Iterator[Record]:
    """``records``, the first one carrying ``warning`` too."""
    iterator = iter(records)
    if warning is not None:
        first = next(iterator, None)
        if first is None:
            return
        first.warning = _join(first.warning, warning)
        yield first
    yield from iterator


def _join(*warnings: str | None) -> str | None:
    return "; ".join(w for w in warnings if w) or None


def _read_whole(data: bytes, source: str, fmt: str) -> Iterator[Record]:
    if (error := _binary_error(data, source)) is not None:
        return iter([Record(source, None, source, None, error)])
    return read_feed(data, source) if fmt == "feed" else iter([_document(data, source, html=fmt == "html")])


def _bare_json_value(line: bytes) -> bool:
    """Whether ``line`` holds one complete JSON value that is not an object or array."""
    line = line.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    return bool(line) and not line.startswith((b"{", b"[")) and _is_json(line)


def _sniff(first_line: bytes, head: list[bytes], text_field: str | None) -> tuple[str, str | None]:
    """The format of an input from its first non-blank line (and the lines after a bare JSON value),
    and a warning when that was a guess."""
    line = first_line.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if line.startswith((b"{", b"[")):
        return "jsonl", None
    if line.startswith(b"<"):
        return ("html" if line[:15].lower().startswith((b"<!doctype html", b"<html")) else "feed"), None
    if _bare_json_value(line):
        rest = [raw for raw in head if raw.strip() and raw is not first_line]
        if all(_is_json(raw) for raw in rest) or any(raw.lstrip().startswith((b"{", b"[")) for raw in rest):
            return "jsonl", ("read as JSON lines (guessed: the first line is a bare JSON value); "
                             "pass --input-format lines to score each line as plain text")
        return "lines", None
    text = line.decode("utf-8", "replace")
    if sniff_delimiter(text, [*TEXT_FIELDS, TITLE_FIELD, *([text_field] if text_field else [])], ",") is not None:
        return "csv", None
    return "lines", None


def _loads(text: str) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as invalid JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _read_jsonl(lines: DecodedLines, source: str, text_field: str | None, id_field: str | None) -> Iterator[Record]:
    for text in lines:
        if not text.strip():
            continue
        lineno, warning = lines.lineno, lines.take_warning()
        try:
            item = _loads(text)
        except json.JSONDecodeError as exc:
            error = f"line {lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            yield Record(f"{source}:{lineno}", None, source, lineno, error, warning=warning)
            continue
        yield from_mapping(item, source, lineno, text_field, id_field, warning)


def _read_json(first: bytes, raw_lines: Iterator[bytes], source: str, text_field: str | None,
               id_field: str | None) -> Iterator[Record]:
    """JSON lines; or, when the first line is ``[`` or an incomplete object, one JSON document.

    A whole document that is an array gives a record per item, an object one record. A document
    that does not parse is read as JSON lines (a record per line, with a warning) when its lines
    look like records of their own (one of them parses alone, or several start with ``{`` or
    ``[``); else it is one error record: a broken pretty-printed document.
    """
    start = first.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if not start.startswith(b"[") and not (start.startswith(b"{") and not _is_json(start)):
        yield from _read_jsonl(DecodedLines(raw_lines, source), source, text_field, id_field)
        return
    lines = list(raw_lines)
    text, warning = decode_bytes(b"".join(lines))
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        if _looks_like_json_lines(lines, first):
            guess = (f"not one JSON document (line {exc.lineno}: {exc.msg}), so read as JSON lines, "
                     "one record per line")
            yield from _warn_first(_read_jsonl(DecodedLines(iter(lines), source), source, text_field, id_field), guess)
            return
        error = (f"{source}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}); "
                 "fix the document, or write one JSON object per line")
        yield Record(source, None, source, None, error, warning=warning)
        return
    for index, item in enumerate(document if isinstance(document, list) else [document], 1):
        yield from_mapping(item, source, index, text_field, id_field, warning)


def _looks_like_json_lines(lines: list[bytes], first: bytes) -> bool:
    nonblank = [line for line in lines if line.strip()]
    if len(nonblank) < 2:
        return False
    if _is_json(first) or any(_is_json(line) for line in nonblank if line is not first):
        return True
    return sum(1 for line in nonblank if line.lstrip(codecs.BOM_UTF8).startswith((b"{", b"["))) > 1


def _is_json(line: bytes) -> bool:
    """Whether ``line`` holds one complete JSON value."""
    try:
        _loads(line.decode("utf-8", "replace").lstrip("\ufeff"))
    except json.JSONDecodeError:
        return False
    return True


def _read_csv(lines: DecodedLines, source: str, default: str, text_field: str | None,
              id_field: str | None) -> Iterator[Record]:
    numbered = ((lines.lineno, text) for text in lines)
    first = next((item for item in numbered if item[1].strip()), None)
    if first is None:
        return
    wanted = [text_field] if text_field else [*TEXT_FIELDS, TITLE_FIELD]
    delimiter = sniff_delimiter(first[1], wanted, default) or default
    guess = None
    if delimiter != default:
        guess = (f"read as CSV separated by {_DELIMITER_NAMES[delimiter]} (guessed from the header line); "
                 "check the cells of this file")
        logger.warning("%s: %s", source, guess)
    rows = csv_rows(itertools.chain([first], numbered), delimiter)
    header_row = next(rows, None)
    if header_row is None or header_row.cells is None:
        raise InputError(f"{source}, line {first[0]}: cannot read the CSV header "
                         f"({header_row.error if header_row else 'no header'}); check its quoting, "
                         "or pass --input-format lines")
    header = [name.strip() for name in header_row.cells]
    if not set(wanted) & set(header):
        raise InputError(f"{source}: no text column (looked for {', '.join(wanted)}); its columns, read as separated "
                         f"by {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}, are {', '.join(header)}. "
                         "Pass --text-field to name the text column.")
    for row in rows:
        warning = _join(row.warning, lines.take_warning(), guess)
        guess = None
        if row.cells is None:
            yield Record(f"{source}:{row.line}", None, source, row.line, row.error, warning=warning)
            continue
        cells = row.cells
        if len(cells) > len(header):
            warning = _join(warning, f"line {row.line}: {_cells(len(cells))} but the header has {len(header)} columns; "
                                     f"the cells after column {len(header)} are ignored (quote cells that contain "
                                     f"{_DELIMITER_NAMES.get(delimiter, repr(delimiter))})")
        elif len(cells) < len(header):
            warning = _join(warning, f"line {row.line}: {_cells(len(cells))} but the header has {len(header)} columns; "
                                     f"no cell for {', '.join(header[len(cells):])}")
        yield from_mapping(dict(zip(header, cells)), source, row.line, text_field, id_field, warning)


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _read_folder(root: Path) -> Iterator[Record]:
    found = False
    for entry in walk_folder(root):
        found = True
        if entry.data is not None:
            yield _document(entry.data, entry.path, html=entry.kind == "html")
        else:
            yield Record(entry.path, None, entry.path, None, entry.error, {"path": entry.path}, entry.warning)
    if not found:
        logger.warning("%s: no .txt or .html files in this folder", printable_path(root))


def _document(data: bytes, source: str, *, html: bool) -> Record:
    if (error := _binary_error(data, source)) is not None:
        return Record(source, None, source, None, error, {"path": source})
    text, warning = decode_bytes(data)
    text = normalise_newlines(html_to_text(text) if html else text).strip()
    return Record(source, text or None, source, None, None if text else "empty text", {"path": source}, warning)


