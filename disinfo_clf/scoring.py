"""Score a stream of news records with a loaded model and write one output row per input record
(JSONL or CSV), in input order, flushing whole rows so that a killed run can be resumed."""
from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from tqdm.auto import tqdm

from .models.base import progress_disabled
from .feeds import STDIN, InputError, Record, check_inputs, normalize_format, read_records

logger = logging.getLogger(__name__)

PREDICTION_KEYS = ("narrative", "name", "score", "scores", "narratives", "role", "role_score", "evidence", "language")
JSONL_KEYS = ("id", *PREDICTION_KEYS, "model", "source", "line", "warning", "error")
CSV_COLUMNS = ("id", "narrative", "name", "score", "scores", "narratives", "role", "role_score", "evidence_text",
               "evidence_start", "evidence_end", "language", "model", "source", "line", "warning", "error")
FSYNC_SECONDS = 2.0
"""Most seconds between two fsyncs of the output (every batch is flushed to the OS at once)."""


class ScoringError(Exception):
    """A problem that stops a scoring run (unreadable input, unwritable or foreign output); names the file."""


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
        self.scored += 1
        narrative = str(row.get("narrative") or "(none)")
        self.narratives[narrative] = self.narratives.get(narrative, 0) + 1
        role = str(row.get("role") or "(none)")
        self.roles[role] = self.roles.get(role, 0) + 1

    def format_table(self) -> str:
        """A plain-text report for the end of a run."""
        new = self.records - self.resumed
        rate = f" ({new / self.elapsed:.1f} records/s)" if self.elapsed > 0 and new else ""
        lines = [f"records  {self.records}" + (f"  ({self.resumed} from the resumed run)" if self.resumed else ""),
                 f"scored   {self.scored}", f"errors   {self.errors}",
                 f"elapsed  {self.elapsed:.1f} s{rate}", f"output   {self.output or 'stdout'}"]
        for title, counts in (("narrative", self.narratives), ("role", self.roles)):
            if counts:
                width = max(len(title), *map(len, counts))
                lines += ["", f"{title:<{width}}  records"]
                lines += [f"{name:<{width}}  {n:>7}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return "\n".join(lines)


def score(inputs: Sequence[str | Path], output: str | Path | None, *, model: ScoringModel,
          fmt: Literal["jsonl", "csv"] = "jsonl", text_field: str | None = None, id_field: str | None = None,
          input_format: str | None = None, resume: bool = False, overwrite: bool = False, batch_size: int = 256,
          predict_batch_size: int | None = None, show_progress_bar: bool | None = None) -> ScoreSummary:
    """Score every record of ``inputs`` and write one row per record to ``output`` (``None``/``-``: stdout).

    ``batch_size`` records are scored and written at a time; ``predict_batch_size`` is handed to
    ``model.predict`` (its own default when ``None``). ``resume`` continues a killed run: rows in
    ``output`` are checked against the inputs (same ids in the same order) and the rest appended.
    An existing non-empty ``output`` is replaced only with ``overwrite``.
    """
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
    try:
        check_inputs(inputs)
        if input_format is not None:
            normalize_format(input_format)
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    summary = ScoreSummary(output=None if to_stdout else str(output))
    sink = _StdoutSink(fmt) if to_stdout else _FileSink(Path(output), fmt, resume, overwrite, inputs)  # type: ignore[arg-type]
    predict_kwargs: dict[str, Any] = {"show_progress_bar": False}
    if predict_batch_size is not None:
        predict_kwargs["batch_size"] = predict_batch_size
    disable = progress_disabled(show_progress_bar)
    try:
        with tqdm(desc="scoring", unit=" records", disable=disable) as bar:
            records = read_records(inputs, text_field=text_field, id_field=id_field, input_format=input_format)
            records = _skip_done(records, sink.done_rows(), summary, sink.name)
            for batch in _batches(records, batch_size):
                rows = _score_batch(batch, model, predict_kwargs)
                sink.write(rows)
                for row in rows:
                    summary.add(row)
                bar.update(len(batch))
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    finally:
        sink.close()
    summary.elapsed = time.monotonic() - started
    return summary


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _skip_done(records: Iterator[Record], done: Iterator[dict[str, Any]], summary: ScoreSummary,
               output: str) -> Iterator[Record]:
    """``records`` after those already written in ``done``, checking that both have the same ids."""
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
    if summary.resumed:
        logger.info("%s: resuming after %d rows already written", output, summary.resumed)
    yield from records


def _score_batch(batch: list[Record], model: ScoringModel, predict_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """One output row per record of ``batch``, in order."""
    todo = [record for record in batch if record.error is None]
    results = iter(_predict(model, [record.text or "" for record in todo], predict_kwargs)) if todo else iter(())
    model_id = str(getattr(model, "model_id", ""))
    rows = []
    for record in batch:
        row: dict[str, Any] = {"id": record.id, **dict.fromkeys(PREDICTION_KEYS), "model": model_id,
                               "source": record.source, "line": record.line, "warning": record.warning,
                               "error": record.error}
        if record.error is None:
            result = next(results)
            if isinstance(result, str):
                row["error"] = result
            else:
                row.update({k: v for k, v in result.items() if k not in ("id", "model", "source", "line", "error")})
        rows.append(row)
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
             "evidence_text": evidence.get("text"), "evidence_start": evidence.get("start"),
             "evidence_end": evidence.get("end")}
    return ["" if cells.get(column) is None else cells[column] for column in CSV_COLUMNS]


def _encode(rows: list[dict[str, Any]], fmt: str, header: bool = False) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n" for row in rows).encode("utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_cells(row) for row in rows)
    return buffer.getvalue().encode("utf-8")


class _StdoutSink:
    name = "stdout"

    def __init__(self, fmt: str) -> None:
        self._fmt, self._header = fmt, fmt == "csv"
        sys.stdout.flush()
        self._stream: BinaryIO = getattr(sys.stdout, "buffer", None) or sys.stdout  # type: ignore[assignment]

    def done_rows(self) -> Iterator[dict[str, Any]]:
        return iter(())

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._stream.write(_encode(rows, self._fmt, self._header))
        self._header = False
        self._stream.flush()

    def close(self) -> None:
        if self._header:  # no rows at all: a CSV still gets its header
            self.write([])


class _FileSink:
    """Appends whole rows to an output file, fsyncing at most every :data:`FSYNC_SECONDS`."""

    def __init__(self, path: Path, fmt: str, resume: bool, overwrite: bool, inputs: Sequence[str | Path]) -> None:
        self.name, self._path, self._fmt = str(path), path, fmt
        if path.is_dir():
            raise ScoringError(f"{path} is a folder: name an output file, e.g. {path / ('scores.' + fmt)}")
        if any(str(i) != STDIN and Path(i).resolve() == path.resolve() for i in inputs):
            raise ScoringError(f"{path} is also an input: choose another output file")
        exists = path.exists() and path.stat().st_size > 0
        if exists and not resume and not overwrite:
            raise ScoringError(f"{path} already exists: pass --resume to continue that run or --overwrite to replace it")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._done_bytes = _truncate_partial(path, fmt) if exists and resume else 0
            self._stream: BinaryIO = path.open("ab" if exists and resume else "wb")
        except OSError as exc:
            raise ScoringError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location") from exc
        self._header = fmt == "csv" and self._done_bytes == 0
        self._last_sync = time.monotonic()
        if self._header:
            self.write([])

    def done_rows(self) -> Iterator[dict[str, Any]]:
        """The rows already in the file (after a resume), as dicts with at least ``id``."""
        if not self._done_bytes:
            return
        with self._path.open("rb") as stream:
            if self._fmt == "jsonl":
                for number, raw in enumerate(_lines_upto(stream, self._done_bytes), 1):
                    try:
                        row = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        raise ScoringError(f"{self._path}: line {number} is not JSON ({exc.msg}); is it a CSV output? "
                                           "Resume with the format it was written in, or start a new output file.") from exc
                    if not isinstance(row, dict) or "id" not in row:
                        raise ScoringError(f"{self._path}: line {number} is not a scoring row (no 'id')")
                    yield row
                return
            reader = csv.DictReader(line.decode("utf-8") for line in _lines_upto(stream, self._done_bytes))
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise ScoringError(f"{self._path}: its header is not that of a scoring CSV; resume with the format "
                                   "it was written in, or start a new output file")
            yield from reader

    def write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._stream.write(_encode(rows, self._fmt, self._header))
            self._header = False
            self._stream.flush()
            if time.monotonic() - self._last_sync >= FSYNC_SECONDS:
                os.fsync(self._stream.fileno())
                self._last_sync = time.monotonic()
        except OSError as exc:
            raise ScoringError(f"cannot write {self._path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._stream.closed:
            return
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as exc:  # already reported by the failing write, if any
            logger.error("cannot finish writing %s: %s", self._path, exc.strerror or exc)
        finally:
            self._stream.close()


def _lines_upto(stream: BinaryIO, limit: int) -> Iterator[bytes]:
    read = 0
    for raw in stream:
        read += len(raw)
        if read > limit:
            return
        yield raw


def _truncate_partial(path: Path, fmt: str) -> int:
    """Cut ``path`` after its last complete row (a killed run may leave half a row) and return its size."""
    with path.open("r+b") as stream:
        size = stream.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # find the last newline, reading backwards in blocks
            start = max(0, end - 65536)
            stream.seek(start)
            block = stream.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if fmt == "csv":
            end = _last_complete_csv_row(stream, end)
        if end < size:
            logger.warning("%s: dropping %d bytes of an unfinished row left by the interrupted run", path, size - end)
            stream.truncate(end)
    return end


def _last_complete_csv_row(stream: BinaryIO, limit: int) -> int:
    """The byte offset after the last complete CSV record within the first ``limit`` bytes.

    A newline inside a quoted cell is not a row end, so the file is parsed (strictly) from the start.
    """
    stream.seek(0)
    consumed = complete = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for raw in _lines_upto(stream, limit):
            consumed += len(raw)
            yield raw.decode("utf-8", errors="replace")

    reader = csv.reader(lines(), strict=True)
    try:
        for _ in reader:
            complete = consumed
    except csv.Error:
        pass  # an unterminated quoted cell at the end: the row was cut
    return complete
