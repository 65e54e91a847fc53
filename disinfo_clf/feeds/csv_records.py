"""Split CSV text into rows so that one broken row never swallows the rows after it.

Rows are parsed strictly. A quoted cell that is never closed (or whose closing quote is followed
by text) would otherwise run on over every following line: such a row becomes a problem
reported at the line it starts on, and the lines after that line are read again as rows of their
own. A one-line row with sloppy quoting (``"abc" def``) is read leniently, with a warning.
"""
from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["CSV_FIELD_LIMIT", "CsvRow", "DELIMITERS", "csv_rows", "sniff_delimiter"]

CSV_FIELD_LIMIT = 64 * 1024 * 1024
"""The largest CSV cell read, in characters; a longer one makes its row an error."""
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvRow:
    """One CSV row: its cells and first line, or ``error`` (then ``cells`` is ``None``)."""

    line: int
    cells: list[str] | None
    error: str | None = None
    warning: str | None = None


def sniff_delimiter(header: str, wanted: Iterable[str], default: str) -> str | None:
    """The delimiter that splits the ``header`` line into several cells, one of them a ``wanted``
    name (compared case-insensitively): ``default`` first, then ``, ; tab |``; ``None`` if none does."""
    names = {name.lower() for name in wanted}
    for delimiter in (default, *(d for d in DELIMITERS if d != default)):
        cells = next(csv.reader([header], delimiter=delimiter), [])
        if len(cells) > 1 and {cell.strip().lower() for cell in cells} & names:
            return delimiter
    return None


def csv_rows(lines: Iterable[tuple[int, str]], delimiter: str) -> Iterator[CsvRow]:
    """The rows of ``(line number, line with its ending)`` pairs; blank lines give no row."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    source = iter(lines)
    pending: deque[tuple[int, str]] = deque()
    consumed: list[tuple[int, str]] = []

    def feed() -> Iterator[str]:
        while True:
            item = pending.popleft() if pending else next(source, None)
            if item is None:
                return
            consumed.append(item)
            yield item[1]

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    while True:
        consumed.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reader = csv.reader(feed(), delimiter=delimiter, strict=True)  # a fresh parser state
            if not consumed:
                return
            start, first = consumed[0]
            if len(consumed) > 1:
                pending.extendleft(reversed(consumed[1:]))
                yield CsvRow(start, None, f"line {start}: broken CSV quoting ({exc}): a quoted cell that starts on "
                             "this line does not close properly, so this row is skipped and the lines after it are "
                             "read as rows of their own. Close the quote; a quote inside a quoted cell is written "
                             'twice ("").')
                continue
            yield _lenient(start, first, delimiter, exc)
            continue
        if cells:
            yield CsvRow(consumed[0][0] if consumed else 0, cells)


def _lenient(line: int, text: str, delimiter: str, exc: csv.Error) -> CsvRow:
    try:
        cells = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as again:
        return CsvRow(line, None, f"line {line}: invalid CSV: {again}")
    return CsvRow(line, cells, warning=f"line {line}: sloppy CSV quoting ({exc}); the row was read leniently, check "
                  'its cells (a quoted cell ends with a quote followed by the delimiter; "" is a quote inside it)')
