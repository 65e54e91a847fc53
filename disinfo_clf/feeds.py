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
import re
import sys
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any, BinaryIO

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
# Candidates for text that is not UTF-8: the usual single-byte encodings of European news sites.
_LEGACY_ENCODINGS = ["cp1252", "cp1251", "cp1250", "cp1257", "cp1253", "cp1254", "koi8_r", "iso8859_15"]
_SNIFF_BYTES = 64 * 1024
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
    raw_lines = _raw_lines(stream)
    head: list[bytes] = []
    for raw in raw_lines:
        head.append(raw)
        if raw.strip():
            break
    first = head[-1] if head else b""
    fmt = fmt or _sniff(first, text_field)
    raw_lines = itertools.chain(head, raw_lines)
    if fmt == "jsonl" and first.lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"["):
        yield from _json_array(b"".join(raw_lines), source, text_field, id_field)
    elif fmt == "jsonl":
        yield from _read_jsonl(_Lines(raw_lines, source), source, text_field, id_field)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv(_Lines(raw_lines, source), source, "\t" if fmt == "tsv" else ",", text_field, id_field)
    elif fmt == "lines":
        lines = _Lines(raw_lines, source)
        for text in lines:
            if text.strip():
                yield Record(f"{source}:{lines.lineno}", text.strip(), source, lines.lineno, warning=lines.take_warning())
    else:
        yield from _read_whole(b"".join(raw_lines), source, fmt)


def _read_whole(data: bytes, source: str, fmt: str) -> Iterator[Record]:
    return _read_feed(data, source) if fmt == "feed" else iter([_document(data, source, html=fmt == "html")])


def _raw_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Byte lines of ``stream``; UTF-16 (with a BOM) is re-encoded as UTF-8."""
    start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        text = io.TextIOWrapper(stream, encoding="utf-16", newline="")  # type: ignore[arg-type]
        return (line.encode("utf-8") for line in text)
    return iter(stream)


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


class _Lines:
    """Decoded lines (endings kept) of a byte-line stream, counting line numbers.

    UTF-8 first; a line that is not UTF-8 is decoded with an encoding guessed once per input from
    that line and the non-UTF-8 lines in the next 64 KiB, and :meth:`take_warning` reports it.
    """

    def __init__(self, raw_lines: Iterator[bytes], source: str) -> None:
        self._raw, self._source = raw_lines, source
        self._fallback: str | None = None
        self._warning: str | None = None
        self.lineno = 0

    def take_warning(self) -> str | None:
        """The decoding warning of the lines read since the last call, if any."""
        warning, self._warning = self._warning, None
        return warning

    def __iter__(self) -> Iterator[str]:
        pending: deque[bytes] = deque()
        while True:
            raw = pending.popleft() if pending else next(self._raw, None)
            if raw is None:
                return
            self.lineno += 1
            if self.lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
                continue
            except UnicodeDecodeError:
                pass
            if self._fallback is None:
                sample, size = [raw], len(raw)
                while size < _SNIFF_BYTES and (ahead := next(self._raw, None)) is not None:
                    pending.append(ahead)
                    size += len(ahead)
                    if not _decodes(ahead, "utf-8"):
                        sample.append(ahead)
                self._fallback = guess_encoding(b"".join(sample))
                logger.warning("%s: line %d is not valid UTF-8; decoding such lines as %s",
                               self._source, self.lineno, self._fallback)
            self._warning = f"not valid UTF-8; decoded as {self._fallback}"
            yield raw.decode(self._fallback, errors="replace")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def guess_encoding(data: bytes) -> str:
    """The most likely legacy encoding of bytes that are not UTF-8 (``cp1252`` when unsure)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=_LEGACY_ENCODINGS).best()
    return best.encoding if best is not None and best.encoding else "cp1252"


def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Text of ``data`` (UTF-8, with or without BOM, else a guessed encoding) and a warning if guessed."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), None
    if _decodes(data, "utf-8-sig"):
        return data.decode("utf-8-sig"), None
    encoding = guess_encoding(data)
    return data.decode(encoding, errors="replace"), f"not valid UTF-8; decoded as {encoding}"


def _read_jsonl(lines: _Lines, source: str, text_field: str | None, id_field: str | None) -> Iterator[Record]:
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


def _json_array(data: bytes, source: str, text_field: str | None, id_field: str | None) -> Iterator[Record]:
    text, warning = decode_bytes(data)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        error = f"{source}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        yield Record(source, None, source, None, error, warning=warning)
        return
    for index, item in enumerate(items if isinstance(items, list) else [items], 1):
        yield _from_mapping(item, source, index, text_field, id_field, warning)


def _read_csv(lines: _Lines, source: str, delimiter: str, text_field: str | None,
              id_field: str | None) -> Iterator[Record]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(iter(lines), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
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
        title = _strip_tags(entry.get("title", ""))
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
    text = html_to_text(text) if html else text.strip()
    return Record(source, text or None, source, None, None if text else "empty text", {"path": source}, warning)


_trafilatura: Any = None


def html_to_text(html: str) -> str:
    """The article text of an HTML page or snippet (trafilatura, else the text without tags)."""
    global _trafilatura
    if _trafilatura is None:
        try:
            import trafilatura
            _trafilatura = trafilatura
        except ImportError as exc:  # e.g. lxml >= 5.2 without the lxml_html_clean package
            logger.warning("trafilatura cannot be imported (%s); HTML is reduced to its text without tags", exc)
            _trafilatura = False
    extracted = None
    if _trafilatura:
        try:
            extracted = _trafilatura.extract(html, include_comments=False)
        except Exception as exc:  # trafilatura fails on odd markup; the tag-strip below still works
            logger.debug("trafilatura failed (%s); stripping tags instead", exc)
    return (extracted or _strip_tags(html)).strip()


_SKIPPED_HTML = re.compile(r"<(script|style|noscript|template|head|svg)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_BLOCK_TAG = re.compile(r"</?(p|div|br|li|tr|h[1-6]|article|section|blockquote|header|footer|ul|ol|table|pre)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")


def _strip_tags(html: str) -> str:
    """The text of ``html`` without tags, one line per block element."""
    text = _TAG.sub("", _BLOCK_TAG.sub("\n", _SKIPPED_HTML.sub(" ", html)))
    lines = (" ".join(unescape(line).split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
