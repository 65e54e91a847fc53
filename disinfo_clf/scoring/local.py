"""Score a stream of news records with a loaded model and write one output row per input record
(JSONL or CSV), in input order, flushing whole rows so that a killed run can be resumed.

Every input record gives exactly one row: a scored row (prediction keys set), an error row
(``error`` says why it could not be scored) or a skipped row (no prediction, no error, a
``warning`` saying why the entry was skipped, e.g. a link out of an input folder).
"""
from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from ..feeds.readers import STDIN, normalize_format
from ..feeds.records import InputError, Record
from ..encoders.base import thread_count
from ..feeds.sources import PARQUET, check_sources, read_sources
from ..models.meta import progress_disabled
from ..text.textio import printable_path
from .fingerprints import fingerprint_sources, model_fingerprint
from .rows import CSV_COLUMNS, ScoreSummary, ScoringModel, encode_rows, score_batch
from .sinks import FileSink, ScoringError, StdoutSink

__all__ = ["ScoringModel", "run_manifest", "score_local"]

logger = logging.getLogger(__name__)


def score_local(inputs: Sequence[str | Path], output: str | Path | None, *, model: ScoringModel,
                fmt: Literal["jsonl", "csv"] = "jsonl", text_field: str | None = None, id_field: str | None = None,
                input_format: str | None = None, resume: bool = False, overwrite: bool = False, batch_size: int = 256,
                predict_batch_size: int | None = None, show_progress_bar: bool | None = None) -> ScoreSummary:
    """The local engine of :func:`disinfo_clf.scoring.score`, in this process, with a loaded model."""
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
        check_sources(inputs, input_format, allow_stdin=True)
        if input_format not in (None, PARQUET):
            normalize_format(input_format)
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    summary = ScoreSummary(output=None if to_stdout else str(output))
    if to_stdout:
        sink: StdoutSink | FileSink = StdoutSink(lambda rows, header: encode_rows(rows, fmt, header), fmt == "csv")
    else:
        try:
            manifest = None if any(str(i) == STDIN for i in inputs) else run_manifest(
                inputs, model, fmt=fmt, text_field=text_field, id_field=id_field, input_format=input_format,
                settings={"batch_size": batch_size, "predict_batch_size": predict_batch_size, "threads": thread_count()})
        except OSError as exc:
            raise ScoringError(f"{printable_path(exc.filename or inputs[0])}: cannot read: {exc.strerror or exc}") from exc
        sink = FileSink(Path(output), fmt, encode=lambda rows, header: encode_rows(rows, fmt, header),  # type: ignore[arg-type]
                        csv_columns=CSV_COLUMNS, resume=resume, overwrite=overwrite, inputs=inputs, manifest=manifest)
    predict_kwargs: dict[str, Any] = {"show_progress_bar": False}
    if predict_batch_size is not None:
        predict_kwargs["batch_size"] = predict_batch_size
    try:
        with tqdm(desc="scoring", unit=" records", disable=progress_disabled(show_progress_bar)) as bar:
            records = read_sources(inputs, text_field=text_field, id_field=id_field, input_format=input_format)
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
                 id_field: str | None = None, input_format: str | None = None,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a resumed run must match: the inputs' fingerprint, the output format, the model's id and
    fingerprint, and the settings that could change a score's last digits (batch sizes, threads)."""
    return {"output_format": fmt, "settings": settings or {},
            **fingerprint_sources(inputs, text_field=text_field, id_field=id_field, input_format=input_format),
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


