"""Exactly-once output of a sharded scoring run: deterministic shards of the record stream, and
part files written atomically under deterministic names by :class:`ShardScorer`.

Shard ``i`` holds records ``i*size .. (i+1)*size - 1`` of the input stream and becomes
``part-<i:05d>.jsonl`` (or ``.parquet``), with the same rows, in the same order, as the local
engine writes for those records. Nothing here needs Ray: the Ray actors run :class:`ShardScorer`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...feeds.readers import Record
from ..rows import JSONL_KEYS, ScoreSummary, arrow_schema, encode_rows, score_batch
from ...prediction import load_model
from ..fingerprints import model_fingerprint

__all__ = ["DEFAULT_SHARD_SIZE", "FORMATS", "Shard", "ShardResult", "ShardScorer", "build_model", "ids_digest",
           "part_name", "plan_shards", "read_part", "write_part"]

FORMATS = ("jsonl", "parquet")
"""Output formats of the sharded engine."""
DEFAULT_SHARD_SIZE = 2000
"""Records per shard (one part file each) unless told otherwise."""
PART_PREFIX = "part-"
TMP_SUFFIX = ".tmp"

ModelSpec = tuple[str, Any]
"""How a worker gets its model: ``("path", DIR or None)`` or ``("factory", zero-argument callable)``."""


@dataclass(frozen=True)
class Shard:
    """Records ``index*size ..`` of the input stream: the unit that is scored and written at once."""

    index: int
    records: list[Record]

    @property
    def key(self) -> str:
        """The part file's name without its suffix, e.g. ``part-00007``."""
        return f"{PART_PREFIX}{self.index:05d}"

    @property
    def ids_sha256(self) -> str:
        """Digest of the shard's record ids, in order: what ties a part file to its records."""
        return ids_digest(record.id for record in self.records)


@dataclass(frozen=True)
class ShardResult:
    """What writing one part file produced: its name and size, and counts over its rows."""

    key: str
    file: str
    bytes: int
    records: int
    scored: int
    errors: int
    skipped: int
    ids_sha256: str
    first_id: str | None
    last_id: str | None
    narratives: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    worker: str = ""
    """``host:pid`` of the process that wrote it."""
    seconds: float | None = None
    """How long scoring and writing it took."""

    @classmethod
    def from_rows(cls, key: str, file: str, size: int, rows: Sequence[dict[str, Any]], worker: str,
                  seconds: float | None = None) -> ShardResult:
        """The result of writing ``rows`` (with at least ``id``, ``narrative``, ``role``, ``error``) to ``file``."""

        counts = ScoreSummary()
        for row in rows:
            counts.add(row)
        ids = [str(row["id"]) for row in rows]
        return cls(key, file, size, counts.records, counts.scored, counts.errors, counts.skipped, ids_digest(ids),
                   ids[0] if ids else None, ids[-1] if ids else None, counts.narratives, counts.roles, worker,
                   None if seconds is None else round(seconds, 3))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (a manifest entry)."""
        return dataclasses.asdict(self)


def ids_digest(ids: Iterable[str]) -> str:
    """SHA-256 of the ids, one per line."""
    digest = hashlib.sha256()
    for record_id in ids:
        digest.update(record_id.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def part_name(key: str, fmt: str) -> str:
    """``part-00007.jsonl`` for key ``part-00007`` and format ``jsonl``."""
    return f"{key}.{fmt}"


def plan_shards(records: Iterable[Record], size: int) -> Iterator[Shard]:
    """Consecutive shards of ``size`` records (the last may be shorter), numbered from 0.

    Only what a row is built from travels to the workers: each record's ``fields`` are dropped.
    """
    if size < 1:
        raise ValueError(f"shard size must be at least 1, got {size}")
    iterator = iter(records)
    for index in itertools.count():
        chunk = [dataclasses.replace(record, fields={}) for record in itertools.islice(iterator, size)]
        if not chunk:
            return
        yield Shard(index, chunk)


def encode_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """Rows as JSON lines, encoded exactly as the local engine writes them."""

    return encode_rows(list(rows), "jsonl")


def _json_text(value: Any) -> str:
    return encode_jsonl([value])[:-1].decode("utf-8")  # type: ignore[list-item]


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:

    extra = dict.fromkeys(key for row in rows for key in row if key not in JSONL_KEYS)
    return [*JSONL_KEYS, *extra]


def rows_table(rows: Sequence[dict[str, Any]]) -> Any:
    """Rows as a pyarrow Table with the same columns in every shard (``scores`` a map, ``evidence`` a
    struct); a column of no known type holds JSON text."""
    import pyarrow as pa

    types = {f.name: f.type for f in arrow_schema()}
    arrays, names = [], []
    for name in _columns(rows):
        values = [row.get(name) for row in rows]
        if name in types:
            arrays.append(pa.array(values, type=types[name]))
        else:
            arrays.append(pa.array([None if v is None else _json_text(v) for v in values], type=pa.string()))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def write_part(directory: Path, key: str, fmt: str, rows: Sequence[dict[str, Any]]) -> tuple[str, int]:
    """Write ``rows`` to ``directory/part_name(key, fmt)`` atomically (temporary file, fsync, rename).

    Returns the file name and size. Writing the same shard twice leaves one complete file.
    """
    name = part_name(key, fmt)
    final = directory / name
    tmp = directory / f".{name}.{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
        if fmt == "jsonl":
            with tmp.open("wb") as stream:
                stream.write(encode_jsonl(rows))
                stream.flush()
                os.fsync(stream.fileno())
        else:
            import pyarrow.parquet as pq

            pq.write_table(rows_table(rows), tmp)
            with tmp.open("rb") as stream:
                os.fsync(stream.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return name, final.stat().st_size


def read_part(path: Path, fmt: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a part file, as the JSONL rows they were made from (``scores`` a dict)."""
    if fmt == "jsonl":
        rows = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        return rows if columns is None else [{c: row.get(c) for c in columns} for row in rows]
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    rows = table.to_pylist()
    for row in rows:
        if isinstance(row.get("scores"), list):
            row["scores"] = dict(row["scores"])
    return rows


def build_model(spec: ModelSpec) -> Any:
    """The model a worker scores with: a model directory (``None``: the embedded default) or a factory's result."""
    kind, value = spec
    if kind == "factory":
        return value()

    return load_model(value)


def model_identity(model: Any) -> dict[str, str]:
    """The model's id and fingerprint, as the local engine's manifest has them; a resumed run must match."""

    return {"id": str(getattr(model, "model_id", "")), "fingerprint": model_fingerprint(model)}


class ShardScorer:
    """Loads the model once, then scores whole shards and writes each one's part file."""

    def __init__(self, spec: ModelSpec, directory: str, fmt: str, batch_size: int,
                 predict_kwargs: dict[str, Any]) -> None:
        self.model = build_model(spec)
        self.directory, self.fmt = Path(directory), fmt
        self.batch_size, self.predict_kwargs = batch_size, dict(predict_kwargs)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def describe(self) -> dict[str, Any]:
        """The loaded model's identity and where this worker runs."""
        return {**model_identity(self.model), "worker": self.worker, "pid": os.getpid()}

    def score_shard(self, index: int, records: list[Record]) -> dict[str, Any]:
        """Score shard ``index`` (``records``), write its part file and return its :class:`ShardResult` dict."""

        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for start in range(0, len(records), self.batch_size):
            rows += score_batch(records[start:start + self.batch_size], self.model, self.predict_kwargs)
        key = Shard(index, []).key
        name, size = write_part(self.directory, key, self.fmt, rows)
        return ShardResult.from_rows(key, name, size, rows, self.worker, time.perf_counter() - started).to_dict()
