"""The records the data stage produces: cases, labelled spans and skip reports."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

SpanLabel = Literal["claim", "debunk", "other"]
SPAN_LABELS: tuple[str, ...] = ("claim", "debunk", "other")


@dataclass
class Case:
    """One EUvsDisinfo case: a disinformation claim, its debunk and its metadata.

    ``source`` names where the case came from (a file path or CSV name); ``line`` is the
    1-based line of the case's first line in a document, ``row`` the 1-based data row of a
    CSV export (the header is row 0).
    """

    title: str
    claim: str
    debunk: str = ""
    outlet: str | None = None
    published: dt.date | None = None
    languages: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    issue: int | None = None
    narratives: list[str] = field(default_factory=list)
    url: str | None = None
    source: str | None = None
    line: int | None = None
    row: int | None = None

    @property
    def id(self) -> str:
        """A stable identifier: the case URL when known, else ``source:line``/``source#row``."""
        if self.url:
            return self.url
        if self.row is not None:
            return f"{self.source}#{self.row}"
        return f"{self.source}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (dates as ISO strings)."""
        out = dataclasses.asdict(self)
        out["published"] = self.published.isoformat() if self.published else None
        out["id"] = self.id
        return out


@dataclass(frozen=True)
class Span:
    """A sentence (or heading/metadata line) of a text, with ``text[start:end] == span.text``."""

    start: int
    end: int
    label: SpanLabel
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A record a loader left out, and why (file, line and field named)."""

    source: str
    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.reason}"
