"""Score a stream of news records with a loaded model and write one output row per input record
(JSONL or CSV), in input order, flushing whole rows so that a killed run can be resumed.

Every input record gives exactly one row: a scored row (prediction keys set), an error row
(``error`` says why it could not be scored) or a skipped row (no prediction, no error, a
``warning`` saying why the entry was skipped, e.g. a link out of an input folder).
"""
from __future__ import annotations

import collections
import csv
import io
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from tqdm.auto import tqdm

from .feeds import STDIN, InputError, Record, check_inputs, normalize_format, read_records
from .fingerprints import input_fingerprint, model_fingerprint
from .models.base import progress_disabled
from .sinks import FSYNC_SECONDS, FileSink, ScoringError, StdoutSink
from .textio import find_surrogate, printable_path

__all__ = ["CSV_COLUMNS", "FSYNC_SECONDS", "JSONL_KEYS", "PREDICTION_KEYS", "ScoreSummary", "ScoringError",
           "ScoringModel", "encode_rows", "input_fingerprint", "model_fingerprint", "run_manifest", "score",
           "score_batch"]

logger = logging.getLogger(__name__)

PREDICTION_KEYS = ("narrative", "name", "score", "scores", "narratives", "role", "role_score", "evidence", "language",
                   "relevance", "relevant", "matches")
"""The keys a prediction fills in a row (``None`` in error and skipped rows)."""
JSONL_KEYS = ("id", *PREDICTION_KEYS, "model", "source", "line", "warning", "error")
"""The keys of every JSONL row, in order."""
CSV_COLUMNS = tuple(column for key in JSONL_KEYS
                    for column in (("evidence_text", "evidence_start", "evidence_end") if key == "evidence" else (key,)))
"""The columns of a CSV output (``evidence`` is split into three)."""
ENGINES = ("local", "ray")
NO_KNOWN_NARRATIVE = "(no known narrative)"
"""The summary's count of records whose relevance is below its threshold."""
BELOW_THRESHOLD = "(none above threshold)"
"""The summary's count of relevant records (or records of a model without relevance) that no narrative reaches."""


class ScoringModel(Protocol):
    """What :func:`score` needs of a model: ``predict`` and ``model_id``."""

    model_id: str

    def predict(self, texts: list[str], **kwargs: Any) -> list[Any]: ...


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


def score(inputs: Sequence[str | Path], output: str | Path | None, *, model: ScoringModel,
          fmt: Literal["jsonl", "csv"] = "jsonl", text_field: str | None = None, id_field: str | None = None,
          input_format: str | None = None, resume: bool = False, overwrite: bool = False, batch_size: int = 256,
          predict_batch_size: int | None = None, show_progress_bar: bool | None = None, engine: str = "local",
          **engine_options: Any) -> ScoreSummary:
    """Score every record of ``inputs`` and write one row per record to ``output`` (``None``/``-``: stdout).

    ``batch_size`` records are scored and written at a time; ``predict_batch_size`` is handed to
    ``model.predict`` (its own default when ``None``). An existing non-empty ``output`` is
    replaced only with ``overwrite``. ``resume`` continues a killed run: the output's manifest
    (``OUT.manifest.json``: inputs' sizes and SHA-256, reader options, output format, model id
    and fingerprint) must match this run's, and its rows the inputs' first records (same ids in
    the same order); the rest is appended. While it runs, the output file is locked: a second run
    on it fails at once. ``engine="ray"`` runs the job on a Ray cluster
    (:func:`disinfo_clf.engines.ray_engine.score_ray`, with ``engine_options``).
    """
    if engine not in ENGINES:
        raise ScoringError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "ray":
        try:
            from .engines.ray_engine import score_ray
        except ImportError as exc:
            raise ScoringError(f"the ray engine is not available ({exc}); install it with "
                               "`pip install 'disinfo-clf[ray]'`, or use the local engine") from exc
        return score_ray(inputs, output, model=model, fmt=fmt, text_field=text_field, id_field=id_field,
                         input_format=input_format, resume=resume, overwrite=overwrite, batch_size=batch_size,
                         predict_batch_size=predict_batch_size, show_progress_bar=show_progress_bar, **engine_options)
    if engine_options:
        raise ScoringError(f"{', '.join(sorted(engine_options))}: options of the ray engine; the local engine takes none")
    started = time.monotonic()
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if fmt not in ("jsonl", "csv"):
        raise ScoringError(f"unknown output format {fmt!r}; choose jsonl or csv")
    if batch_size < 1:
        raise ScoringError(f"batch_size must be at least 1, got {batch_size}")
    to_stdout = output is None or str(output) == STDIN
    if resume and to_stdout:
        raise ScoringError("--resume needs an output file: it cannot continue a run written to stdout")
    if resume and any(str(i) == STDIN for i in inputs):
        raise ScoringError("--resume cannot check that standard input holds what the interrupted run read: "
                           "save it to a file, score that file, and resume with the file")
    try:
        check_inputs(inputs)
        if input_format is not None:
            normalize_format(input_format)
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    summary = ScoreSummary(output=None if to_stdout else str(output))
    if to_stdout:
        sink: StdoutSink | FileSink = StdoutSink(lambda rows, header: encode_rows(rows, fmt, header), fmt == "csv")
    else:
        try:
            manifest = None if any(str(i) == STDIN for i in inputs) else run_manifest(
                inputs, model, fmt=fmt, text_field=text_field, id_field=id_field, input_format=input_format)
        except OSError as exc:
            raise ScoringError(f"{printable_path(exc.filename or inputs[0])}: cannot read: {exc.strerror or exc}") from exc
        sink = FileSink(Path(output), fmt, encode=lambda rows, header: encode_rows(rows, fmt, header),  # type: ignore[arg-type]
                        csv_columns=CSV_COLUMNS, resume=resume, overwrite=overwrite, inputs=inputs, manifest=manifest)
    predict_kwargs: dict[str, Any] = {"show_progress_bar": False}
    if predict_batch_size is not None:
        predict_kwargs["batch_size"] = predict_batch_size
    try:
        with tqdm(desc="scoring", unit=" records", disable=progress_disabled(show_progress_bar)) as bar:
            records = read_records(inputs, text_field=text_field, id_field=id_field, input_format=input_format)
            records, replay = _skip_done(records, sink.done_rows(), summary, sink.name, batch_size)
            first = next(records, None)
            records, replay = (iter(()), []) if first is None else (itertools.chain([first], records), replay)
            for batch in _batches(itertools.chain(replay, records), batch_size):
                # A resumed run scores the already written records of its first batch again, unwritten, so that
                # every batch holds the records it held in the interrupted run: scores can depend on batch mates
                # in their last bits (BLAS kernels), and the output must be the same bytes.
                rows = score_batch(batch, model, predict_kwargs)[len(replay):]
                replay = []
                sink.write(rows)
                for row in rows:
                    summary.add(row)
                bar.update(len(rows))
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    finally:
        sink.close()
    summary.elapsed = time.monotonic() - started
    return summary


def run_manifest(inputs: Sequence[str | Path], model: ScoringModel, *, fmt: str, text_field: str | None = None,
                 id_field: str | None = None, input_format: str | None = None) -> dict[str, Any]:
    """What a resumed run must match: :func:`input_fingerprint`, the output format, the model's id and fingerprint."""
    return {"output_format": fmt,
            **input_fingerprint(inputs, text_field=text_field, id_field=id_field, input_format=input_format),
            "model": {"id": str(getattr(model, "model_id", "")), "fingerprint": model_fingerprint(model)}}


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _skip_done(records: Iterator[Record], done: Iterator[dict[str, Any]], summary: ScoreSummary,
               output: str, batch_size: int) -> tuple[Iterator[Record], list[Record]]:
    """``records`` after those already written in ``done`` (checking that both have the same ids),
    and the written records of the batch the interrupted run was in."""
    tail: collections.deque[Record] = collections.deque(maxlen=batch_size)
    for position, row in enumerate(done, 1):
        record = next(records, None)
        if record is None:
            raise ScoringError(f"{output} holds more rows ({position}+) than the inputs have records: it was written "
                               "for other inputs. Use a new output file, or drop --resume and pass --overwrite.")
        if record.id != row.get("id"):
            raise ScoringError(f"{output} does not belong to these inputs: its row {position} has id {row.get('id')!r} "
                               f"but input record {position} has id {record.id!r}. Resume with the same inputs, "
                               "--text-field, --id-field and --format, or start a new output file.")
        summary.add(row)
        summary.resumed += 1
        tail.append(record)
    if summary.resumed:
        logger.info("%s: resuming after %d rows already written", output, summary.resumed)
    partial = summary.resumed % batch_size
    return records, list(tail)[len(tail) - partial:] if partial else []


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


def _predict(model: ScoringModel, texts: list[str], kwargs: dict[str, Any]) -> list[dict[str, Any] | str]:
    """Prediction dicts for ``texts``; when a batch fails, texts are scored one by one and a text that
    still fails gets its error message instead."""
    try:
        predictions = model.predict(texts, **kwargs)
        if len(predictions) != len(texts):
            raise ValueError(f"the model returned {len(predictions)} predictions for {len(texts)} texts")
        return [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in predictions]
    except Exception as exc:  # a model failure on one text must not cost the other texts their rows
        if len(texts) == 1:
            logger.warning("the model failed on one record: %s: %s", type(exc).__name__, exc)
            return [f"model failed: {type(exc).__name__}: {exc}"]
        logger.warning("the model failed on a batch of %d (%s: %s); scoring its records one by one",
                       len(texts), type(exc).__name__, exc)
        return [result for text in texts for result in _predict(model, [text], kwargs)]


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
