"""Inputs of every scoring engine: everything :mod:`disinfo_clf.feeds` reads, plus Parquet files
(or folders of them) and remote URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``: any
filesystem pyarrow opens, which is what Ray's own readers use), as one stream of
:class:`~disinfo_clf.feeds.Record` with the same ids as :func:`~disinfo_clf.feeds.read_records`.
"""
from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import readers as feeds
from .readers import STDIN, InputError, Record, unique_ids
from .records import from_mapping
from .folders import DOCUMENT_SUFFIXES

__all__ = ["PARQUET", "check_sources", "filesystem", "is_uri", "parquet_files", "read_sources"]

logger = logging.getLogger(__name__)

PARQUET = "parquet"
"""The extra input format (``--input-format parquet``); ``.parquet`` and ``.pq`` files are read as Parquet."""
_PARQUET_SUFFIXES = (".parquet", ".pq")
_ROWS_PER_READ = 1024


def is_uri(inp: str | Path) -> bool:
    """Whether ``inp`` names a remote (or ``file://``) location rather than a local path."""
    text = str(inp)
    return "://" in text and not Path(text).exists()


def _is_parquet(name: str, input_format: str | None) -> bool:
    return input_format == PARQUET or name.lower().endswith(_PARQUET_SUFFIXES)


def filesystem(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError / ValueError depending on the scheme
        raise InputError(f"{uri}: cannot open this location ({exc}); check the URI, or pass a local path") from exc


def check_sources(inputs: Sequence[str | Path], input_format: str | None = None, *, allow_stdin: bool = False) -> None:
    """Raise :class:`InputError` unless every input exists and can be read (standard input only with ``allow_stdin``)."""
    if input_format is not None and input_format != PARQUET:
        feeds.normalize_format(input_format)
    if not allow_stdin and any(str(inp) == STDIN for inp in inputs):
        raise InputError("the ray engine cannot read standard input: name files, folders or URIs")
    local = [inp for inp in inputs if not is_uri(inp)]
    if local or not inputs:
        feeds.check_inputs(local)
    for uri in map(str, inputs):
        if is_uri(uri):
            import pyarrow.fs as pafs

            fs, path = filesystem(uri)
            if fs.get_file_info(path).type == pafs.FileType.NotFound:
                raise InputError(f"{uri}: no such file or folder")


def read_sources(inputs: Sequence[str | Path], *, text_field: str | None = None, id_field: str | None = None,
                 input_format: str | None = None) -> Iterator[Record]:
    """All records of ``inputs`` in order, ids made unique as :func:`~disinfo_clf.feeds.read_records` does."""
    inputs = list(inputs)
    fmt = None if input_format in (None, PARQUET) else feeds.normalize_format(input_format)
    if input_format != PARQUET and not any(is_uri(i) or _has_parquet(i) for i in inputs):
        yield from feeds.read_records(inputs, text_field=text_field, id_field=id_field, input_format=fmt)
        return
    check_sources(inputs, input_format)
    records = itertools.chain.from_iterable(_read_one(str(inp), text_field, id_field, input_format) for inp in inputs)
    yield from unique_ids(records)


def _has_parquet(inp: str | Path) -> bool:
    path = Path(inp)
    if path.is_dir():
        return bool(parquet_files(path))
    return path.suffix.lower() in _PARQUET_SUFFIXES


def parquet_files(root: Path) -> list[str]:
    return sorted(str(Path(d, n)) for d, _, names in os.walk(root) for n in names if n.lower().endswith(_PARQUET_SUFFIXES))


def _read_one(inp: str, text_field: str | None, id_field: str | None, input_format: str | None) -> Iterator[Record]:
    fmt = None if input_format in (None, PARQUET) else input_format
    if not is_uri(inp):
        path = Path(inp)
        if path.is_dir() and (parquet := parquet_files(path)):
            for name in parquet:
                with open(name, "rb") as stream:
                    yield from _read_parquet(stream, name, text_field, id_field)
        elif _is_parquet(inp, input_format) and path.is_file():
            with path.open("rb") as stream:
                yield from _read_parquet(stream, inp, text_field, id_field)
        else:
            yield from feeds.read_input(inp, text_field=text_field, id_field=id_field, input_format=fmt)
        return
    import pyarrow.fs as pafs

    fs, root = filesystem(inp)
    try:
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            yield from _read_remote_file(fs, root, inp, text_field, id_field, input_format)
            return
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        names = sorted(i.path for i in infos if i.type == pafs.FileType.File)
        scheme = inp.split("://", 1)[0]
        parquet = [n for n in names if n.lower().endswith(_PARQUET_SUFFIXES)]
        for name in parquet or [n for n in names if Path(n).suffix.lower() in DOCUMENT_SUFFIXES]:
            yield from _read_remote_file(fs, name, f"{scheme}://{name}", text_field, id_field, None)
    except OSError as exc:
        raise InputError(f"{inp}: cannot read: {exc}") from exc


def _read_remote_file(fs: Any, path: str, source: str, text_field: str | None, id_field: str | None,
                      input_format: str | None) -> Iterator[Record]:
    if _is_parquet(path, input_format):
        with fs.open_input_file(path) as stream:
            yield from _read_parquet(stream, source, text_field, id_field)
        return
    # feeds' own format table and stream reader, so that a remote file gives the records a local copy gives.
    kind = feeds.normalize_format(input_format) if input_format else feeds.EXTENSIONS.get(Path(path).suffix.lower())
    with fs.open_input_stream(path) as stream:
        yield from feeds.read_stream(stream, source, kind, text_field, id_field)


def _read_parquet(stream: Any, source: str, text_field: str | None, id_field: str | None) -> Iterator[Record]:
    """One record per row; the text and id columns are found as for JSON lines (``text``, ``title``, ``id``...)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises ArrowInvalid for a file that is not Parquet
        raise InputError(f"{source}: not a readable Parquet file ({exc}); pass --input-format to read it otherwise") from exc
    names = set(parquet.schema_arrow.names)
    wanted = [text_field] if text_field else [*feeds.TEXT_FIELDS, feeds.TITLE_FIELD]
    if not names & set(wanted):
        raise InputError(f"{source}: no text column (looked for {', '.join(wanted)}); its columns are "
                         f"{', '.join(sorted(names))}. Pass --text-field to name the text column.")
    line = 0
    for batch in parquet.iter_batches(batch_size=_ROWS_PER_READ):
        for row in batch.to_pylist():
            line += 1
            yield from_mapping(row, source, line, text_field, id_field, None)
