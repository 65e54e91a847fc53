"""Output rows: their schema, derived in one place from :class:`~disinfo_clf.prediction.Prediction`,
scoring a batch of records into rows (scored, error or skipped), encoding rows as JSON lines, CSV
or Arrow, and the run's summary."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..feeds.records import Record
from ..matching.index import CaseMatch
from ..prediction import Evidence, Prediction
from ..text.textio import find_surrogate, printable_path
from .sinks import ScoringError

logger = logging.getLogger(__name__)


class ScoringModel(Protocol):
    """What the engines need of a model: ``predict``, ``model_id`` and ``fingerprint``."""

    model_id: str

    def predict(self, texts: list[str], **kwargs: Any) -> list[Any]: ...


PREDICTION_KEYS = tuple(f.name for f in dataclasses.fields(Prediction))
"""The keys a prediction fills in a row (``None`` in error and skipped rows): :class:`Prediction`'s fields."""
RECORD_KEYS = ("model", "source", "line", "warning", "error")
"""The keys every row carries beside ``id`` and the prediction's, whatever became of the record."""
JSONL_KEYS = ("id", *PREDICTION_KEYS, *RECORD_KEYS)
"""The keys of every JSONL row, in order."""
CSV_COLUMNS = tuple(column for key in JSONL_KEYS
                    for column in (("evidence_text", "evidence_start", "evidence_end") if key == "evidence" else (key,)))
"""The columns of a CSV output (``evidence`` is split into three)."""
NO_KNOWN_NARRATIVE = "(no known narrative)"
"""The summary's count of records whose relevance is below its threshold."""
BELOW_THRESHOLD = "(none above threshold)"
"""The summary's count of relevant records (or records of a model without relevance) that no narrative reaches."""


@dataclass
class ScoreSummary:
    """Counts over the whole output of a run (rows kept from a resumed run included)."""

    records: int = 0
    scored: int = 0
    errors: int = 0
    skipped: int = 0
    """Rows without a prediction or an error: entries skipped with a warning."""
    resumed: int = 0
    """Rows already in the output when a resumed run started."""
    narratives: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    output: str | None = None
    """The output file, ``None`` for stdout."""

    def add(self, row: dict[str, Any]) -> None:
        """Count one output row."""
        self.records += 1
        if row.get("error"):
            self.errors += 1
            return
        if not row.get("narrative"):
            self.skipped += 1
            return
        self.scored += 1
        narrative = _counted_narrative(row)
        self.narratives[narrative] = self.narratives.get(narrative, 0) + 1
        role = str(row.get("role") or "(none)")
        self.roles[role] = self.roles.get(role, 0) + 1

    def format_table(self) -> str:
        """A plain-text report for the end of a run."""
        new = self.records - self.resumed
        rate = f" ({new / self.elapsed:.1f} records/s)" if self.elapsed > 0 and new else ""
        lines = [f"records  {self.records}" + (f"  ({self.resumed} from the resumed run)" if self.resumed else ""),
                 f"scored   {self.scored}", f"errors   {self.errors}", f"skipped  {self.skipped}",
                 f"elapsed  {self.elapsed:.1f} s{rate}", f"output   {self.output or 'stdout'}"]
        for title, counts in (("narrative", self.narratives), ("role", self.roles)):
            if counts:
                width = max(len(title), *map(len, counts))
                lines += ["", f"{title:<{width}}  records"]
                lines += [f"{name:<{width}}  {n:>7}" for name, n in
                          sorted(counts.items(), key=lambda kv: (kv[0] != NO_KNOWN_NARRATIVE, -kv[1], kv[0]))]
        return "\n".join(lines)


def _counted_narrative(row: dict[str, Any]) -> str:
    """Where the summary counts a scored row: with a relevance model, only flagged records count for
    a narrative (the first of ``narratives``, the most likely above its threshold); others count as
    no known narrative or none above threshold. Without one, the most likely narrative."""
    relevant = row.get("relevant")
    if relevant is None or relevant == "":
        return str(row.get("narrative"))
    if relevant is False or str(relevant).lower() == "false":
        return NO_KNOWN_NARRATIVE
    flagged = row.get("narratives")
    if isinstance(flagged, str):  # a CSV row read back on resume
        flagged = [n for n in flagged.split(";") if n]
    return str(flagged[0]) if flagged else BELOW_THRESHOLD


def score_batch(records: list[Record], model: ScoringModel, predict_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """One output row (keys :data:`JSONL_KEYS`) per record, in order: scored, error or skipped.

    A record with an ``error`` gives an error row; one with neither text nor error a skipped row;
    the others are scored together with ``model.predict(texts, **predict_kwargs)``, and a text the
    model fails on gets an error row of its own. Every row can be written as UTF-8.
    """
    model_id = str(getattr(model, "model_id", ""))
    rows = [{"id": r.id, **dict.fromkeys(PREDICTION_KEYS), "model": model_id, "source": r.source, "line": r.line,
             "warning": r.warning, "error": r.error} for r in records]
    todo = []
    for index, record in enumerate(records):
        if record.error is not None or record.text is None:
            continue
        at = find_surrogate(record.text)
        if at is None:
            todo.append(index)
        else:
            rows[index]["error"] = (f"the text holds a lone UTF-16 surrogate (U+{ord(record.text[at]):04X}) at character "
                                    f"{at}, which is not a character; fix the text's encoding")
    results = _predict(model, [records[i].text or "" for i in todo], predict_kwargs) if todo else []
    for index, result in zip(todo, results):
        if isinstance(result, str):
            rows[index]["error"] = result
        else:
            rows[index].update({k: v for k, v in result.items() if k not in ("id", "model", "source", "line", "error")})
    for row in rows:
        for key in ("id", "source", "warning", "error"):
            if isinstance(row[key], str) and find_surrogate(row[key]) is not None:
                row[key] = printable_path(row[key])
    return rows


PROBE_TEXT = "NATO is moving its troops closer to Russia's borders."
"""A text any working model scores: when a batch fails and this fails too, the model itself is broken."""


def _predict(model: ScoringModel, texts: list[str], kwargs: dict[str, Any]) -> list[dict[str, Any] | str]:
    """Prediction dicts for ``texts``; when a batch fails, texts are scored one by one and a text that
    still fails gets its error message instead. When the model also fails on :data:`PROBE_TEXT`, the
    failure is the model's, not a record's: :class:`ScoringError`, before any row of the batch is written."""
    try:
        return _dicts(model.predict(texts, **kwargs), len(texts))
    except Exception as exc:  # a model failure on one text must not cost the other texts their rows
        _check_model_works(model, kwargs, exc)
        if len(texts) == 1:
            logger.warning("the model failed on one record: %s: %s", type(exc).__name__, exc)
            return [f"model failed: {type(exc).__name__}: {exc}"]
        logger.warning("the model failed on a batch of %d (%s: %s); scoring its records one by one",
                       len(texts), type(exc).__name__, exc)
        return [result for text in texts for result in _predict(model, [text], kwargs)]


def _dicts(predictions: list[Any], expected: int) -> list[dict[str, Any]]:
    if len(predictions) != expected:
        raise ValueError(f"the model returned {len(predictions)} predictions for {expected} texts")
    return [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in predictions]


def _check_model_works(model: ScoringModel, kwargs: dict[str, Any], failure: Exception) -> None:
    """Raise :class:`ScoringError` when ``model`` fails on :data:`PROBE_TEXT` as well (it is broken,
    and per-record error rows would count as done on resume)."""
    try:
        _dicts(model.predict([PROBE_TEXT], **kwargs), 1)
    except Exception as exc:
        raise ScoringError(
            f"the model {getattr(model, 'model_id', '') or type(model).__name__!r} fails on every text "
            f"({type(failure).__name__}: {failure}); nothing of this batch was written. Fix or rebuild the model "
            "(a damaged encoder cache is checked and rebuilt by `disinfo-clf encoder prepare`), "
            "then run again with --resume") from exc


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _csv_cells(row: dict[str, Any]) -> list[Any]:
    evidence = row.get("evidence") or {}
    cells = {**row, "scores": json.dumps(row["scores"], default=_json_default) if row.get("scores") is not None else None,
             "narratives": ";".join(row["narratives"]) if row.get("narratives") is not None else None,
             "matches": json.dumps(row["matches"], ensure_ascii=False, default=_json_default) if row.get("matches") is not None else None,
             "evidence_text": evidence.get("text"), "evidence_start": evidence.get("start"),
             "evidence_end": evidence.get("end")}
    return ["" if cells.get(column) is None else cells[column] for column in CSV_COLUMNS]


def encode_rows(rows: list[dict[str, Any]], fmt: str, header: bool = False) -> bytes:
    """The UTF-8 bytes of ``rows`` as JSON lines or CSV (``header``: the CSV header line first)."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n" for row in rows).encode("utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_cells(row) for row in rows)
    return buffer.getvalue().encode("utf-8")


def arrow_schema() -> Any:
    """The Arrow schema of a row, read off :class:`Prediction`'s type hints (and those of
    :class:`Evidence` and :class:`CaseMatch` inside it), so a new field reaches Parquet by itself."""
    import pyarrow as pa

    def arrow(hint: Any) -> Any:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            return arrow(next(a for a in args if a is not type(None)))
        if origin in (list, tuple):  # tuple[str, ...]: a list in Arrow
            return pa.list_(arrow(args[0]))
        if origin is dict:
            return pa.map_(arrow(args[0]), arrow(args[1]))
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            return pa.struct([(f.name, arrow(hints[f.name])) for f in dataclasses.fields(hint)])
        return {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_()}[hint]

    hints = typing.get_type_hints(Prediction, {"Evidence": Evidence, "CaseMatch": CaseMatch})
    record = {"id": pa.string(), "model": pa.string(), "source": pa.string(), "line": pa.int64(),
              "warning": pa.string(), "error": pa.string()}
    return pa.schema([(key, record[key] if key in record else arrow(hints[key])) for key in JSONL_KEYS])
