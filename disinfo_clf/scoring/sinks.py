"""Where scoring rows go: standard output, or a file that is locked while a run writes it, carries a
manifest of the inputs and model it was written for, and can be continued after a kill.

A file sink appends whole rows, flushing every batch and fsyncing at most every
:data:`FSYNC_SECONDS`. On ``resume`` the half row a killed run may have left is cut off and the
manifest (``OUT.manifest.json``) must match the run's; while a run writes ``OUT`` it holds an
advisory lock (``flock``) on it, so a second run on the same file refuses to start.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .fingerprints import describe_differences

__all__ = ["FSYNC_SECONDS", "MANIFEST_SUFFIX", "FileSink", "ScoringError", "StdoutSink", "manifest_path",
           "read_manifest", "write_manifest"]

logger = logging.getLogger(__name__)

FSYNC_SECONDS = 2.0
"""Most seconds between two fsyncs of the output (every batch is flushed to the OS at once)."""
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
Encoder = Callable[[list[dict[str, Any]], bool], bytes]
"""``encode(rows, header)``: the bytes of ``rows`` (with the CSV header line first when ``header``)."""


class ScoringError(Exception):
    """A problem that stops a scoring run (unreadable input, unwritable, locked or foreign output); names the file."""


def manifest_path(output: str | Path) -> Path:
    """The manifest beside an output file: ``OUT.manifest.json``."""
    return Path(f"{output}{MANIFEST_SUFFIX}")


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest at ``path``; ``None`` when there is none; :class:`ScoringError` when it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ScoringError(f"{path}: not a readable scoring manifest ({exc}); start again with --overwrite") from exc
    if not isinstance(data, dict):
        raise ScoringError(f"{path}: not a scoring manifest; start again with --overwrite")
    return data


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` atomically (a temporary file, fsynced, then renamed)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump({"manifest_version": MANIFEST_VERSION, **manifest}, stream, indent=1, ensure_ascii=False)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


class StdoutSink:
    """Writes rows to standard output (no resume, no lock, no manifest)."""

    name = "stdout"

    def __init__(self, encode: Encoder, header: bool) -> None:
        self._encode, self._header = encode, header
        sys.stdout.flush()
        self._stream: BinaryIO = getattr(sys.stdout, "buffer", None) or sys.stdout  # type: ignore[assignment]

    def done_rows(self) -> Iterator[dict[str, Any]]:
        """Rows already written: none."""
        return iter(())

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Write and flush ``rows``."""
        self._stream.write(self._encode(rows, self._header))
        self._header = False
        self._stream.flush()

    def close(self) -> None:
        """Finish the output (a CSV with no rows still gets its header)."""
        if self._header:
            self.write([])


class FileSink:
    """Appends whole rows to a locked output file (see the module docstring)."""

    def __init__(self, path: Path, fmt: str, *, encode: Encoder, csv_columns: Sequence[str], resume: bool,
                 overwrite: bool, inputs: Sequence[str | Path], manifest: dict[str, Any] | None) -> None:
        self.name, self._path, self._fmt = str(path), path, fmt
        self._encode, self._columns = encode, tuple(csv_columns)
        if path.is_dir():
            raise ScoringError(f"{path} is a folder: name an output file, e.g. {path / ('scores.' + fmt)}")
        if any(str(i) != "-" and _same_file(Path(i), path) for i in inputs):
            raise ScoringError(f"{path} is also an input: choose another output file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise ScoringError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location") from exc
        self._stream: BinaryIO = os.fdopen(fd, "r+b")
        self._regular = stat.S_ISREG(os.fstat(fd).st_mode)  # not e.g. /dev/null: no lock, manifest or fsync
        try:
            self._done_bytes = self._prepare(resume, overwrite, manifest)
        except BaseException:
            self._stream.close()
            raise
        self._header = fmt == "csv" and self._done_bytes == 0
        self._last_sync = time.monotonic()
        if self._header:
            self.write([])

    def _prepare(self, resume: bool, overwrite: bool, manifest: dict[str, Any] | None) -> int:
        """Lock the file, check or write the manifest, cut a half-written row; the bytes kept."""
        path, fd, regular = self._path, self._stream.fileno(), self._regular
        if regular:
            _lock(fd, path)
        exists = regular and os.fstat(fd).st_size > 0
        if exists and not resume and not overwrite:
            raise ScoringError(f"{path} already exists: pass --resume to continue that run or --overwrite to replace it")
        where = manifest_path(path)
        try:
            if exists and resume:
                _check_manifest(path, where, manifest)
                done = _truncate_partial(self._stream, path, self._fmt)
                self._stream.seek(0, os.SEEK_END)
                return done
            if regular:
                self._stream.truncate(0)
                os.fsync(fd)
                if manifest is not None:
                    write_manifest(where, {"output": path.name, **manifest})
                else:
                    with contextlib.suppress(FileNotFoundError):
                        where.unlink()
        except OSError as exc:
            raise ScoringError(f"cannot write {path} or {where}: {exc.strerror or exc}; choose a writable location") from exc
        return 0

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
            if tuple(reader.fieldnames or ()) != self._columns:
                raise ScoringError(f"{self._path}: its header is not that of a scoring CSV; resume with the format "
                                   "it was written in, or start a new output file")
            yield from reader

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append ``rows``, flush them, and fsync when the last fsync is :data:`FSYNC_SECONDS` old."""
        try:
            self._stream.write(self._encode(rows, self._header))
            self._header = False
            self._stream.flush()
            if self._regular and time.monotonic() - self._last_sync >= FSYNC_SECONDS:
                os.fsync(self._stream.fileno())
                self._last_sync = time.monotonic()
        except OSError as exc:
            raise ScoringError(f"cannot write {self._path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Flush, fsync and close the file (which releases its lock)."""
        if self._stream.closed:
            return
        try:
            self._stream.flush()
            if self._regular:
                os.fsync(self._stream.fileno())
        except OSError as exc:  # already reported by the failing write, if any
            logger.error("cannot finish writing %s: %s", self._path, exc.strerror or exc)
        finally:
            self._stream.close()


def _lock(fd: int, path: Path) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise ScoringError(f"{path} is being written by another scoring run right now (it holds a lock on the file); "
                           "wait for that run to finish, or write to another output file") from exc
    except OSError as exc:  # e.g. a file system without locks: go on, unprotected
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        logger.warning("%s: cannot lock the output (%s); make sure no other run writes it", path, exc.strerror)


def _check_manifest(path: Path, where: Path, manifest: dict[str, Any] | None) -> None:
    if manifest is None:
        return
    stored = read_manifest(where)
    if stored is None:
        raise ScoringError(f"cannot resume {path}: {where.name} is missing beside it, so this run cannot check that "
                           "the inputs and model are those of the interrupted run. Start again with --overwrite, "
                           "or write to a new output file.")
    differences = describe_differences(stored, manifest)
    if differences:
        raise ScoringError(f"cannot resume {path}: it was written for other inputs or another model "
                           f"({'; '.join(differences)}). Resume with the same inputs, options and model, "
                           "or start again with --overwrite (or write to a new output file).")


def _lines_upto(stream: BinaryIO, limit: int) -> Iterator[bytes]:
    read = 0
    for raw in stream:
        read += len(raw)
        if read > limit:
            return
        yield raw


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same path, or the same device and inode (a hard link)."""
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:  # a URI, or an output that does not exist yet
        return a.resolve() == b.resolve()
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _truncate_partial(stream: BinaryIO, path: Path, fmt: str) -> int:
    """Cut the file after its last complete row (a killed run may leave half a row) and return its size."""
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
