"""Read news inputs (JSONL, CSV, RSS/Atom, folders of text and HTML files, stdin) as one stream
of :class:`Record`, one per item, in a deterministic order.

A problem with one item (malformed JSON, empty text, a broken feed) becomes a record with an
``error``; an input that cannot be read at all raises :class:`InputError`.
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any, BinaryIO

from .textio import DecodedLines, byte_lines, decode_bytes, html_to_text, normalise_newlines, strip_tags

__all__ = ["FORMATS", "STDIN", "InputError", "Record", "check_inputs", "decode_bytes", "html_to_text",
           "join_title", "normalize_format", "read_input", "read_records"]

logger = logging.getLogger(__name__)

STDIN = "-"
FORMATS = ("jsonl", "csv", "tsv", "feed", "folder", "text", "html", "lines")
"""``text``/``html``: a whole file is one item; ``lines``: one item per non-blank line."""
TEXT_FIELDS = ("text", "content", "body", "summary")
TITLE_FIELD = "title"
ID_FIELDS = ("id", "guid", "url", "link")
_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "rss": "feed", "atom": "feed", "xml": "feed",
            "dir": "folder", "txt": "text", "htm": "html"}
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
               ".xml": "feed", ".rss": "feed", ".atom": "feed", ".txt": "text", ".html": "html", ".htm": "html"}
_FOLDER_SUFFIXES = {".txt": "text", ".html": "html", ".htm": "html"}
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


class InputError(Exception):
    """An input that cannot be read at all (missing, unreadable, unknown format); names the file."""


@dataclass
class Record:
    """One item to score; ``error`` says why it cannot be scored (then ``text`` is ``None``)."""

    id: str
    text: str | None
    source: str
    line: int | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """The item as read (JSON object, CSV row, feed entry metadata)."""
    warning: str | None = None
    """A problem that did not stop reading, e.g. text that was not valid UTF-8."""


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
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    for inp in inputs:
        for record in read_input(inp, text_field=text_field, id_field=id_field, input_format=input_format):
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
    source = "stdin" if str(inp) == STDIN else str(inp)
    fmt = normalize_format(input_format) if input_format else None
    try:
        if source == "stdin":
            yield from _read_stream(sys.stdin.buffer, source, fmt, text_field, id_field)
            return
        path = Path(inp)
        if path.is_dir():
            yield from _read_folder(path)
            return
        fmt = fmt or _EXTENSIONS.get(path.suffix.lower())
        with path.open("rb") as stream:
            yield from _read_stream(stream, source, fmt, text_field, id_field)
    except OSError as exc:
        raise InputError(f"{exc.filename or source}: cannot read: {exc.strerror or exc}") from exc


def normalize_format(name: str) -> str:
    """The canonical name of an input format (accepts aliases such as ``rss`` or ``ndjson``)."""
    fmt = _ALIASES.get(name.lower(), name.lower())
    if fmt not in FORMATS:
        raise InputError(f"unknown input format {name!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _read_stream(stream: BinaryIO, source: str, fmt: str | None, text_field: str | None,
                 id_field: str | None) -> Iterator[Record]:
    if fmt in ("feed", "text", "html"):
        yield from _read_whole(stream.read(), source, fmt)
        return
    raw_lines = byte_lines(stream)
    head: list[bytes] = []
    for raw in raw_lines:
        head.append(raw)
        if raw.strip():
            break
    first = head[-1] if head else b""
    fmt = fmt or _sniff(first, text_field)
    raw_lines = itertools.chain(head, raw_lines)
    if fmt == "jsonl":
        yield from _read_json(first, raw_lines, source, text_field, id_field)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv(DecodedLines(raw_lines, source), source, "\t" if fmt == "tsv" else ",", text_field, id_field)
    elif fmt == "lines":
        lines = DecodedLines(raw_lines, source)
        for text in lines:
            if text.strip():
                yield Record(f"{source}:{lines.lineno}", text.strip(), source, lines.lineno, warning=lines.take_warning())
    else:
        yield from _read_whole(b"".join(raw_lines), source, fmt)


def _read_whole(data: bytes, source: str, fmt: str) -> Iterator[Record]:
    return _read_feed(data, source) if fmt == "feed" else iter([_document(data, source, html=fmt == "html")])


def _sniff(first_line: bytes, text_field: str | None) -> str:
    """Tell JSON lines, a feed, CSV/TSV or plain text lines apart from the first non-blank line."""
    line = first_line.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if line.startswith((b"{", b"[")):
        return "jsonl"
    if line.startswith(b"<"):
        return "html" if line[:15].lower().startswith((b"<!doctype html", b"<html")) else "feed"
    delimiter = "\t" if b"\t" in line else ","
    header = next(csv.reader([line.decode("utf-8", "replace")], delimiter=delimiter), [])
    names = {name.strip().lower() for name in header}
    if len(header) > 1 and names & {*TEXT_FIELDS, TITLE_FIELD, (text_field or "").lower()}:
        return "tsv" if delimiter == "\t" else "csv"
    return "lines"


def _read_jsonl(lines: DecodedLines, source: str, text_field: str | None, id_field: str | None) -> Iterator[Record]:
    for text in lines:
        if not text.strip():
            continue
        lineno, warning = lines.lineno, lines.take_warning()
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            error = f"line {lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            yield Record(f"{source}:{lineno}", None, source, lineno, error, warning=warning)
            continue
        yield _from_mapping(item, source, lineno, text_field, id_field, warning)


def _read_json(first: bytes, raw_lines: Iterator[bytes], source: str, text_field: str | None,
               id_field: str | None) -> Iterator[Record]:
    """JSON lines; or, when the first line is ``[`` or an incomplete object, one JSON document.

    A whole document that is an array gives a record per item, an object one record. A document
    that does not parse is one error record, unless other lines are JSON on their own: then the
    input is JSON lines with a broken first line.
    """
    start = first.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if not start.startswith(b"[") and not (start.startswith(b"{") and not _is_json(start)):
        yield from _read_jsonl(DecodedLines(raw_lines, source), source, text_field, id_field)
        return
    lines = list(raw_lines)
    text, warning = decode_bytes(b"".join(lines))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if start.startswith(b"{") and any(_is_json(line) for line in lines if line is not first):
            yield from _read_jsonl(DecodedLines(iter(lines), source), source, text_field, id_field)
            return
        error = f"{source}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        yield Record(source, None, source, None, error, warning=warning)
        return
    for index, item in enumerate(document if isinstance(document, list) else [document], 1):
        yield _from_mapping(item, source, index, text_field, id_field, warning)


def _is_json(line: bytes) -> bool:
    """Whether ``line`` holds one complete JSON value."""
    try:
        json.loads(line.decode("utf-8", "replace").lstrip("\ufeff"))
    except json.JSONDecodeError:
        return False
    return True


def _read_csv(lines: DecodedLines, source: str, delimiter: str, text_field: str | None,
              id_field: str | None) -> Iterator[Record]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(iter(lines), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise InputError(f"{source}, line {lines.lineno}: cannot read the CSV header ({exc}); "
                         "check its quoting, or pass --input-format lines") from exc
    if not header:
        return
    wanted = [text_field] if text_field else [*TEXT_FIELDS, TITLE_FIELD]
    if not set(wanted) & set(header):
        raise InputError(f"{source}: no text column (looked for {', '.join(wanted)}); its columns are "
                         f"{', '.join(header)}. Pass --text-field to name the text column.")
    while True:
        start = lines.lineno + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(f"{source}:{start}", None, source, start, f"line {start}: invalid CSV: {exc}",
                         warning=lines.take_warning())
            continue
        if row:
            yield _from_mapping(dict(zip(header, row)), source, start, text_field, id_field, lines.take_warning())


def _from_mapping(item: Any, source: str, line: int, text_field: str | None, id_field: str | None,
                  warning: str | None) -> Record:
    fallback_id = f"{source}:{line}"
    if not isinstance(item, Mapping):
        error = f"line {line}: expected a JSON object, got {type(item).__name__}"
        return Record(fallback_id, None, source, line, error, warning=warning)
    fields = dict(item)
    ids = [id_field] if id_field else ID_FIELDS
    record_id = next((str(item[k]) for k in ids if item.get(k) not in (None, "")), fallback_id)
    record = Record(record_id, None, source, line, fields=fields, warning=warning)
    try:
        if text_field:
            if text_field not in item:
                record.error = f"line {line}: no field {text_field!r} (fields: {', '.join(map(str, item))})"
                return record
            text = _as_text(item[text_field], text_field)
        else:
            body = next((_as_text(item[k], k) for k in TEXT_FIELDS if _as_text(item.get(k), k).strip()), "")
            text = join_title(_as_text(item.get(TITLE_FIELD), TITLE_FIELD), body)
    except TypeError as exc:
        record.error = f"line {line}: {exc}"
        return record
    record.text, record.error = (text.strip(), None) if text.strip() else (None, "empty text")
    return record


def _as_text(value: Any, name: str) -> str:
    if value is None or isinstance(value, (str, int, float)):
        return "" if value is None else str(value)
    raise TypeError(f"field {name!r} holds a {type(value).__name__}, not text")


def join_title(title: str, body: str) -> str:
    """``title. body`` (no extra full stop after a title that ends in punctuation)."""
    title, body = title.strip(), body.strip()
    if not title or not body or body.startswith(title):
        return body or title
    return f"{title} {body}" if title[-1] in ".!?:;…" else f"{title}. {body}"


def _read_feed(data: bytes, source: str) -> Iterator[Record]:
    import feedparser

    # A stream (not bytes or a string) so that feedparser never treats the input as a URL to fetch.
    parsed = feedparser.parse(io.BytesIO(data), resolve_relative_uris=False, sanitize_html=True)
    if not parsed.entries:
        if parsed.get("bozo") or not parsed.get("version"):
            reason = parsed.get("bozo_exception") or "no RSS or Atom elements found"
            yield Record(source, None, source, None, f"{source}: not a readable RSS/Atom feed ({reason})")
        else:
            logger.warning("%s: the feed has no entries", source)
        return
    if parsed.get("bozo"):
        logger.warning("%s: the feed is not well-formed (%s); reading its %d entries anyway",
                       source, parsed.get("bozo_exception"), len(parsed.entries))
    for index, entry in enumerate(parsed.entries, 1):
        contents = [c.get("value", "") for c in entry.get("content", [])]
        body = max(contents, key=len) if contents else entry.get("summary", "")
        title = strip_tags(entry.get("title", ""))
        text = join_title(title, html_to_text(body) if "<" in body else unescape(body))
        fields = {k: entry.get(k) for k in ("title", "link", "published", "updated", "author") if entry.get(k)}
        yield Record(entry.get("id") or entry.get("link") or f"{source}:{index}", text or None, source, index,
                     None if text else "empty text", fields)


def _read_folder(root: Path) -> Iterator[Record]:
    def fail(exc: OSError) -> None:
        raise exc

    found = False
    for directory, subdirs, files in os.walk(root, onerror=fail):
        subdirs.sort()
        for name in sorted(files):
            kind = _FOLDER_SUFFIXES.get(Path(name).suffix.lower())
            if kind:
                found = True
                path = Path(directory, name)
                yield _document(path.read_bytes(), str(path), html=kind == "html")
    if not found:
        logger.warning("%s: no .txt or .html files in this folder", root)


def _document(data: bytes, source: str, *, html: bool) -> Record:
    text, warning = decode_bytes(data)
    text = normalise_newlines(html_to_text(text) if html else text).strip()
    return Record(source, text or None, source, None, None if text else "empty text", {"path": source}, warning)
