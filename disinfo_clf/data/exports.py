"""Loaders for the two EUvsDisinfo CSV exports: the Disinfo Review (2015-2017) and the database
(2015-2020).

Both return :class:`~disinfo_clf.data.cases.Case` objects with canonical keywords, languages and
countries (see :mod:`disinfo_clf.data.vocabulary`). Rows are never dropped silently: every row a
loader leaves out (bad date, empty claim, exact duplicate, repeated title and claim) is logged and
appended to the caller's ``skipped`` list as a :class:`~disinfo_clf.data.cases.Skipped`, whose
``reason`` starts with one of the ``SKIP_*`` kinds below followed by ``": "`` and the details.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..resources import DATABASE_CSV, REVIEW_CSV
from ..text.textio import normalise_newlines, read_utf8
from .cases import Case, Skipped
from ..text.dates import parse_date
from ..text.vocabulary import canonical_countries, canonical_keywords, canonical_languages, clean, normalise_key

if TYPE_CHECKING:
    from ..taxonomy import Taxonomy

logger = logging.getLogger(__name__)

ErrorMode = Literal["warn", "raise"]

SKIP_BAD_ROW = "bad row"
SKIP_BAD_DATE = "bad date"
SKIP_BAD_FIELD = "bad field"
SKIP_EMPTY_CLAIM = "empty claim"
SKIP_EXACT_DUPLICATE = "exact duplicate"
SKIP_REPEATED_CLAIM = "repeated claim"

REVIEW_REQUIRED = ("date", "title", "summary", "disproof", "keywords")
REVIEW_OPTIONAL = ("issue", "outlet", "language", "origin", "reported by", "source")
DATABASE_REQUIRED = ("date", "id", "title", "keywords")
DATABASE_OPTIONAL = ("countries", "languages", "outlets")

_DELIMITERS = (";", ",", "\t", "|")
_MULTI_SPLIT = re.compile(r"\s*[+,]\s*")
# The database scrape appends this pseudo-outlet when a case lists more outlets than shown.
_OUTLET_NOISE = frozenset({"show more"})


class RowError(ValueError):
    """A data row that cannot become a case; carries the field at fault."""

    def __init__(self, kind: str, field_name: str | None, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.field = field_name
        self.detail = detail


@dataclass
class LoadReport:
    """What a loader did with one file: rows read, cases kept, rows skipped per reason kind."""

    source: str
    rows_read: int
    kept: int
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, source: str, cases: Sequence[Case], skipped: Iterable[Skipped]) -> LoadReport:
        """The report for a loader's result (only ``skipped`` entries of ``source`` count)."""
        kinds = Counter(skip_kind(s) for s in skipped if s.source == source)
        return cls(source, len(cases) + sum(kinds.values()), len(cases), dict(kinds))

    def __str__(self) -> str:
        total = sum(self.skipped.values())
        detail = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.skipped.items()))
        text = f"{self.source}: {self.rows_read} rows read, {self.kept} kept, {total} skipped"
        return f"{text} ({detail})" if detail else text


def skip_kind(skipped: Skipped) -> str:
    """The reason kind of a skip record (one of the ``SKIP_*`` constants)."""
    return skipped.reason.split(":", 1)[0]


def load_review_csv(
    path: str | Path | None = None,
    *,
    errors: ErrorMode = "warn",
    skipped: list[Skipped] | None = None,
    taxonomy: Taxonomy | None = None,
) -> list[Case]:
    """Cases of the Disinfo Review export (``;``-separated, dates ``dd.mm.yyyy``).

    ``path`` defaults to the vendored copy. The claim is the ``summary`` (the ``title`` when the
    summary is empty), the debunk the ``disproof``. The review's ``source`` column is the URL of
    the disinformation article, not of a case page, and repeats across cases, so ``Case.url`` stays
    empty and ``Case.id`` is ``<file name>#<row>``. With ``errors="raise"`` a bad row raises
    ``ValueError``; with ``"warn"`` it is logged and skipped. Skipped rows are appended to
    ``skipped``. With a ``taxonomy`` the cases get their narrative ids.
    """
    return _load(Path(path) if path else REVIEW_CSV, REVIEW_REQUIRED, REVIEW_OPTIONAL,
                 _review_case, errors, skipped, taxonomy)


def load_database_csv(
    path: str | Path | None = None,
    *,
    errors: ErrorMode = "warn",
    skipped: list[Skipped] | None = None,
    taxonomy: Taxonomy | None = None,
) -> list[Case]:
    """Cases of the EUvsDisinfo database export (``,``-separated, dates ``YYYY-MM-DD``).

    ``path`` defaults to the vendored copy. The one-sentence ``title`` is both title and claim;
    there is no debunk text. Multiple countries, keywords, languages and outlets are joined with
    ``+``. ``errors``, ``skipped`` and ``taxonomy`` work as in :func:`load_review_csv`.
    """
    return _load(Path(path) if path else DATABASE_CSV, DATABASE_REQUIRED, DATABASE_OPTIONAL,
                 _database_case, errors, skipped, taxonomy)


def split_multi(value: str) -> list[str]:
    """The values of a multi-valued field joined with ``+`` or commas, blanks dropped."""
    return [part for part in (p.strip() for p in _MULTI_SPLIT.split(value)) if part]


RowParser = Callable[[dict[str, str], str, int], Case]


def _review_case(row: dict[str, str], source: str, number: int) -> Case:
    title = clean(row["title"])
    claim = row["summary"].strip() or title
    if not claim:
        raise RowError(SKIP_EMPTY_CLAIM, "summary", "summary and title are both empty")
    issue_text = row.get("issue", "").strip()
    try:
        issue = int(issue_text) if issue_text else None
    except ValueError:
        raise RowError(SKIP_BAD_FIELD, "issue", f"issue {issue_text!r} is not a number") from None
    return Case(
        title=title or clean(claim),
        claim=claim,
        debunk=row["disproof"].strip(),
        outlet=clean(row.get("outlet", "")) or None,
        published=_date(row["date"]),
        languages=canonical_languages(split_multi(row.get("language", ""))),
        countries=canonical_countries(split_multi(row.get("origin", ""))),
        keywords=canonical_keywords(split_multi(row["keywords"])),
        issue=issue,
        source=source,
        row=number,
    )


def _database_case(row: dict[str, str], source: str, number: int) -> Case:
    title = clean(row["title"])
    if not title:
        raise RowError(SKIP_EMPTY_CLAIM, "title", "title (the claim) is empty")
    url = row["id"].strip()
    if not url:
        raise RowError(SKIP_BAD_FIELD, "id", "id (the case URL) is empty")
    outlets = [o for o in (clean(p) for p in row.get("outlets", "").split("+"))
               if o and o.casefold() not in _OUTLET_NOISE]
    return Case(
        title=title,
        claim=title,
        outlet="; ".join(outlets) or None,
        published=_date(row["date"]),
        languages=canonical_languages(split_multi(row.get("languages", ""))),
        countries=canonical_countries(split_multi(row.get("countries", ""))),
        keywords=canonical_keywords(split_multi(row["keywords"])),
        url=url,
        source=source,
        row=number,
    )


def _date(value: str) -> dt.date:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise RowError(SKIP_BAD_DATE, "date", str(exc)) from None


def _load(
    path: Path,
    required: Sequence[str],
    optional: Sequence[str],
    parse_row: RowParser,
    errors: ErrorMode,
    skipped: list[Skipped] | None,
    taxonomy: Taxonomy | None,
) -> list[Case]:
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise', not {errors!r}")
    where = str(path)
    skips: list[Skipped] = []

    def skip(line: int, field_name: str | None, reason: str, level: int) -> None:
        record = Skipped(where, line, field_name, reason)
        logger.log(level, "skipped %s", record)
        skips.append(record)

    parsed: list[tuple[int, Case]] = []  # (file line, case)
    first_line_of: dict[tuple[str, ...], int] = {}
    # Line endings are normalised first, so claims hold no "\r" and old-Mac files read too.
    with io.StringIO(normalise_newlines(read_utf8(path)), newline="") as handle:
        header_line = handle.readline()
        delimiter, header = _header(header_line, path, required, optional)
        reader = csv.reader(handle, delimiter=delimiter)
        end = 1
        for number, fields in enumerate(reader, start=1):
            line, end = end + 1, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                _fail(errors, where, line, None,
                      f"{SKIP_BAD_ROW}: {len(fields)} fields where the header has {len(header)}"
                      " (check the quoting and the delimiter)", skip)
                continue
            key = tuple(fields)
            if key in first_line_of:
                skip(line, None, f"{SKIP_EXACT_DUPLICATE}: same as line {first_line_of[key]}",
                     logging.DEBUG)
                continue
            first_line_of[key] = line
            row = {name: value for name, value in zip(header, fields) if name}
            try:
                parsed.append((line, parse_row(row, path.name, number)))
            except RowError as exc:
                _fail(errors, where, line, exc.field, f"{exc.kind}: {exc.detail}", skip)

    cases = _drop_repeated_claims(parsed, skip)
    skips.sort(key=lambda s: s.line)
    if skipped is not None:
        skipped.extend(skips)
    if taxonomy is not None:
        for case in cases:
            case.narratives = taxonomy.tag(case.keywords, text=case.claim)
    logger.info("%s", LoadReport.of(where, cases, skips))
    return cases


def _fail(errors: ErrorMode, where: str, line: int, field_name: str | None, reason: str,
          skip: Callable[[int, str | None, str, int], None]) -> None:
    if errors == "raise":
        raise ValueError(str(Skipped(where, line, field_name, reason)))
    skip(line, field_name, reason, logging.WARNING)


def _drop_repeated_claims(parsed: list[tuple[int, Case]],
                          skip: Callable[[int, str | None, str, int], None]) -> list[Case]:
    """Keep the earliest-published case of each (title, claim) pair, in file order."""
    oldest_first = sorted(parsed, key=lambda lc: (lc[1].published or dt.date.max, lc[0]))
    kept_line: dict[tuple[str, str], int] = {}
    dropped: set[int] = set()
    for line, case in oldest_first:
        key = (normalise_key(case.title), normalise_key(case.claim))
        if key in kept_line:
            dropped.add(line)
            skip(line, "title", f"{SKIP_REPEATED_CLAIM}: same title and claim as line "
                 f"{kept_line[key]}", logging.DEBUG)
        else:
            kept_line[key] = line
    return [case for line, case in parsed if line not in dropped]


def _header(line: str, path: Path, required: Sequence[str],
            optional: Sequence[str]) -> tuple[str, list[str]]:
    """The delimiter and normalised column names; ValueError naming a missing column."""
    if not line.strip():
        raise ValueError(f"{path}: the file is empty; expected a header line with the columns "
                         f"{', '.join(required)}")
    known = set(required) | set(optional)
    best: tuple[int, str, list[str]] | None = None
    for delimiter in _DELIMITERS:
        names = [_column(n) for n in next(csv.reader([line], delimiter=delimiter))]
        hits = len(known.intersection(names))
        if best is None or hits > best[0]:
            best = (hits, delimiter, names)
    assert best is not None
    _, delimiter, names = best
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(
            f"{path}, line 1: missing required column {missing[0]!r}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; the header has {', '.join(repr(n) for n in names)}"
        )
    return delimiter, names


def _column(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().casefold())
