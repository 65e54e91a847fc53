"""The cases a case index holds: the vendored EUvsDisinfo cases, or a user's fact-check archive.

A case file is CSV (comma, ``;``, tab or ``|`` separated, with a header row) or JSON Lines (one
object per line), UTF-8. Fields, by name:

| field | |
| --- | --- |
| ``id`` and/or ``url`` | at least one; the id defaults to the URL, the URL to an id that is one |
| ``claim`` (or ``text``) | the claim text, required; this is what is matched |
| ``title`` | optional, defaults to the claim |
| ``date`` | optional; ``YYYY-MM-DD``, ``dd.mm.yyyy``, ``dd/mm/yyyy`` or ``March 02, 2022`` |
| ``narratives`` | optional; a JSON list, or ids separated by ``;`` or ``|`` |

Every problem is reported with the file, the line and the field, and how to fix it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..data.corpus import load_all_cases
from ..taxonomy import load_taxonomy
from ..text.dates import DATE_HINT, parse_date
from ..text.textio import read_utf8

CLAIM_FIELDS = ("claim", "text")
_LIST_SPLIT = re.compile(r"\s*[;|]\s*")
_URL = re.compile(r"^https?://\S+$", re.I)


class CaseFileError(ValueError):
    """A case file that cannot be read; the message names the file, line and field."""


@dataclass(frozen=True)
class IndexedCase:
    """What an index keeps of one case."""

    id: str
    url: str | None
    title: str
    claim: str
    """The catalogued claim: the text that is embedded and matched."""
    date: str | None
    """ISO date, ``None`` when unknown."""
    narratives: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"id": self.id, "url": self.url, "title": self.title, "claim": self.claim, "date": self.date,
                "narratives": list(self.narratives)}

    def to_json(self) -> dict[str, Any]:
        """The compact form of ``cases.json``: fields equal to their defaults are left out."""
        out: dict[str, Any] = {"id": self.id, "claim": self.claim}
        if self.url and self.url != self.id:
            out["url"] = self.url
        if self.title != self.claim:
            out["title"] = self.title
        if self.date:
            out["date"] = self.date
        if self.narratives:
            out["narratives"] = list(self.narratives)
        return out

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> IndexedCase:
        """The case a :meth:`to_json` object describes."""
        case_id, claim = str(item["id"]), str(item["claim"])
        url = item.get("url") or (case_id if _URL.match(case_id) else None)
        return cls(id=case_id, url=url, title=str(item.get("title") or claim), claim=claim,
                   date=item.get("date"), narratives=tuple(item.get("narratives") or ()))


def vendored_cases() -> list[IndexedCase]:
    """Every vendored EUvsDisinfo case (de-duplicated, oldest first) with its taxonomy narratives."""

    taxonomy = load_taxonomy()
    out = []
    for case in load_all_cases():
        claim = (case.claim or case.title).strip()
        narratives = case.narratives or taxonomy.tag(case.keywords, text=claim)
        out.append(IndexedCase(id=case.id, url=case.url, title=(case.title or claim).strip(), claim=claim,
                               date=case.published.isoformat() if case.published else None,
                               narratives=tuple(narratives)))
    return out


def load_case_file(path: str | Path) -> list[IndexedCase]:
    """The cases of a CSV or JSONL case file (see the module docstring for its fields)."""
    path = Path(path)
    if not path.is_file():
        raise CaseFileError(f"case file {path} does not exist: pass a CSV or JSONL file of cases")
    text = read_utf8(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text.lstrip().startswith("{"):
        rows = _jsonl_rows(text, path)
    else:
        rows = _csv_rows(text, path)
    cases: list[IndexedCase] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        case = _case(row, path, line)
        if case.id in seen:
            raise CaseFileError(f"{path}, line {line}, field 'id': {case.id!r} was already used on line "
                                f"{seen[case.id]}; give every case its own id")
        seen[case.id] = line
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{path} holds no cases: write one case per line (JSONL) or per row after a header (CSV)")
    return cases


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaseFileError(f"{path}, line {number}: not JSON ({exc.msg} at column {exc.colno}); write one JSON "
                                "object per line") from exc
        if not isinstance(item, dict):
            raise CaseFileError(f"{path}, line {number}: a JSON {type(item).__name__}, not an object; write one object "
                                'per line, e.g. {"id": "…", "claim": "…", "date": "2024-01-31"}')
        rows.append((number, item))
    return rows


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t", "|"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) != len(header):
                    raise CaseFileError(f"{path}, line {start}: {len(row)} cells but the header has {len(header)} "
                                        f"columns ({', '.join(header)}); quote cells that contain {delimiter!r}")
                rows.append((start, dict(zip(header, row))))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CaseFileError(f"{path}, line {reader.line_num}: invalid CSV ({exc}); check the quoting") from exc
    if header and not set(CLAIM_FIELDS) & set(header):
        raise CaseFileError(f"{path}, line 1: no 'claim' column (the header has {', '.join(header)}); name the "
                            "claim text column 'claim'")
    return rows


def _field(row: dict[str, Any], name: str, path: Path, line: int) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise CaseFileError(f"{path}, line {line}, field {name!r}: a {type(value).__name__}, not text")
    return str(value).strip() or None


def _case(row: dict[str, Any], path: Path, line: int) -> IndexedCase:
    claim = next((c for c in (_field(row, name, path, line) for name in CLAIM_FIELDS) if c), None)
    if claim is None:
        raise CaseFileError(f"{path}, line {line}, field 'claim': missing or empty; every case needs its claim text")
    case_id, url = _field(row, "id", path, line), _field(row, "url", path, line)
    if case_id is None and url is None:
        raise CaseFileError(f"{path}, line {line}, field 'id': missing; give each case an 'id' or a 'url'")
    case_id = case_id or url
    if url is None and _URL.match(case_id or ""):
        url = case_id
    if url is not None and not _URL.match(url):
        raise CaseFileError(f"{path}, line {line}, field 'url': {url!r} is not an http(s) address")
    date = _field(row, "date", path, line)
    if date is not None:
        try:
            date = parse_date(date).isoformat()
        except ValueError as exc:
            raise CaseFileError(f"{path}, line {line}, field 'date': cannot read {date!r}; {DATE_HINT}") from exc
    return IndexedCase(id=str(case_id), url=url, title=_field(row, "title", path, line) or claim, claim=claim,
                       date=date, narratives=_narratives(row.get("narratives"), path, line))


def _narratives(value: Any, path: Path, line: int) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise CaseFileError(f"{path}, line {line}, field 'narratives': not a JSON list ({exc.msg})") from exc
        else:
            return tuple(v for v in _LIST_SPLIT.split(value.strip()) if v)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseFileError(f"{path}, line {line}, field 'narratives': give a list of ids, e.g. [\"nato-aggression\"] "
                            "or 'nato-aggression;west-russophobia'")
    return tuple(v.strip() for v in value if v.strip())


def data_sha256(cases: Sequence[IndexedCase]) -> str:
    """sha256 of everything an index stores about ``cases``."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(json.dumps(case.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()


def texts_sha256(cases: Sequence[IndexedCase]) -> str:
    """sha256 of the texts an index embeds for ``cases``, in order."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.claim.encode("utf-8") + b"\n")
    return digest.hexdigest()
