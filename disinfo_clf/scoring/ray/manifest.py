"""The output folder of a sharded run and its ``_manifest.json``: what the run read (the inputs'
fingerprint, options), which model scored it, and which part files hold which records.

A resumed run checks the manifest against its own inputs and model and refuses a mismatch; it
keeps each part file whose records are the shard it plans (by ids, in order) and scores the rest.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from ..fingerprints import describe_differences
from ..rows import ScoreSummary
from ..sinks import ScoringError
from .shards import PART_PREFIX, TMP_SUFFIX, Shard, ShardResult, ids_digest, part_name, read_part

__all__ = ["LOCK", "MANIFEST", "Manifest", "count_part", "prepare_output", "remove_temporary_files"]

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1
SAVE_SECONDS = 1.0
"""Most seconds between two rewrites of the manifest during a run (a part file never waits on it)."""


LOCK = ".lock"
"""Held (``flock``) by the driver while a run writes the folder, so that a second run refuses to start."""


def _is_ours(name: str) -> bool:
    return name in (MANIFEST, LOCK) or name.startswith((PART_PREFIX, f".{PART_PREFIX}", f".{MANIFEST}"))


def prepare_output(directory: Path, *, resume: bool, overwrite: bool) -> tuple[Manifest | None, int]:
    """Lock ``directory`` and make it ready for a run: the manifest of the run to resume (if any)
    and the lock's file descriptor (close it to release the lock).

    Refuses a folder that holds other files, and one that holds a run unless ``resume`` or
    ``overwrite`` says what to do with it; removes temporary files a killed run left.
    """
    if directory.exists() and not directory.is_dir():
        raise ScoringError(f"{directory} is a file: the ray engine writes a folder of part files; name a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted(n for n in os.listdir(directory) if n != LOCK)
    except OSError as exc:
        raise ScoringError(f"cannot write {directory}: {exc.strerror or exc}; choose a writable location") from exc
    foreign = [n for n in names if not _is_ours(n)]
    if foreign:
        raise ScoringError(f"{directory} holds files that are not scoring output (e.g. {foreign[0]}): "
                           "choose an empty or new folder")
    if names and not resume and not overwrite:
        raise ScoringError(f"{directory} already holds a scoring run: pass --resume to continue it "
                           "or --overwrite to replace it")
    lock = _lock(directory)
    try:
        for name in names:
            if name.endswith(TMP_SUFFIX) or not resume:
                (directory / name).unlink(missing_ok=True)
        manifest = Manifest.load(directory) if resume else None
        if manifest is None and resume and any(n.startswith(PART_PREFIX) for n in names):
            raise ScoringError(f"{directory} has part files but no {MANIFEST}: it cannot be resumed; "
                               "pass --overwrite to replace it")
    except BaseException:
        os.close(lock)
        raise
    return manifest, lock


def _lock(directory: Path) -> int:
    import fcntl

    path = directory / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ScoringError(f"cannot write {directory}: {exc.strerror or exc}; choose a writable location") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise ScoringError(f"{directory} is being written by another scoring run right now; wait for it to end, "
                           "or choose another output folder") from exc
    except OSError as exc:  # a file system without locks: go on, unprotected
        logger.warning("%s: cannot lock the output folder (%s); make sure no other run writes it", directory, exc)
    return fd


def remove_temporary_files(directory: Path) -> None:
    """Delete the temporary files that killed workers left (a finished run has no use for them)."""
    for name in os.listdir(directory):
        if name.startswith(f".{PART_PREFIX}") and name.endswith(TMP_SUFFIX):
            (directory / name).unlink(missing_ok=True)


class Manifest:
    """``_manifest.json`` of one output folder: a header (what was scored, with what) and one entry per part."""

    def __init__(self, directory: Path, header: dict[str, Any], shards: dict[str, dict[str, Any]] | None = None,
                 complete: bool = False) -> None:
        self.directory, self.path = directory, directory / MANIFEST
        self.header = header
        self.shards: dict[str, dict[str, Any]] = dict(shards or {})
        self.complete = complete
        self._saved = 0.0

    @classmethod
    def load(cls, directory: Path) -> Manifest | None:
        """The manifest in ``directory``, ``None`` when there is none."""
        path = directory / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version") != MANIFEST_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r}, expected {MANIFEST_VERSION}")
            header = {k: v for k, v in data.items() if k not in ("shards", "complete", "totals")}
            return cls(directory, header, data.get("shards", {}), bool(data.get("complete")))
        except (OSError, ValueError, AttributeError) as exc:
            raise ScoringError(f"{path}: not a readable scoring manifest ({exc}); pass --overwrite to start again") from exc

    @staticmethod
    def make_header(*, fmt: str, shard_size: int, fingerprint: dict[str, Any],
                    model: dict[str, str] | None = None) -> dict[str, Any]:
        """The header of a run: everything a resumed run must have in common with it.

        ``fingerprint`` is the inputs' (``inputs`` and ``reader``), as the local engine's manifest has it.
        """
        header = {"format_version": MANIFEST_VERSION, "engine": "ray", "output_format": fmt, "shard_size": shard_size,
                  **fingerprint}
        return header if model is None else {**header, "model": model}

    def check(self, header: dict[str, Any]) -> None:
        """Raise :class:`ScoringError` unless ``header`` (this run's) matches the manifest's.

        A header without ``model`` checks everything but the model (before any worker has loaded it).
        """
        found = describe_differences(self.header, {"model": self.header.get("model"), **header})
        if self.header.get("shard_size") != header["shard_size"]:
            found.append(f"--shard-size was {self.header.get('shard_size')}, now {header['shard_size']}")
        if found:
            raise ScoringError(f"{self.directory} cannot be resumed by this run: {'; '.join(found)}. Resume with the "
                               "same inputs, options and model, or start a new output folder (or pass --overwrite)")

    def done(self, shard: Shard, summary: ScoreSummary) -> bool:
        """Whether ``shard``'s part file is complete and holds exactly its records; counts it into ``summary``.

        A part file without an entry (the driver was killed after it was written) is read and checked.
        """
        fmt = self.header["output_format"]
        name = part_name(shard.key, fmt)
        path = self.directory / name
        entry = self.shards.get(shard.key)
        digest = shard.ids_sha256
        if entry is not None and path.exists():
            if entry.get("ids_sha256") == digest and entry.get("bytes") == path.stat().st_size:
                count_part(summary, entry, resumed=True)
                return True
            logger.warning("%s does not hold shard %d's records any more: scoring it again", path, shard.index)
        elif path.exists():
            try:
                rows = read_part(path, fmt, columns=("id", "narrative", "role", "error"))
            except Exception as exc:  # an unreadable part is scored again, not trusted
                logger.warning("%s cannot be read (%s): scoring it again", path, exc)
                return False
            if ids_digest(str(r["id"]) for r in rows) != digest:
                logger.warning("%s does not hold shard %d's records: scoring it again", path, shard.index)
                return False
            self.add(ShardResult.from_rows(shard.key, name, path.stat().st_size, rows, "(found on resume)").to_dict())
            count_part(summary, self.shards[shard.key], resumed=True)
            return True
        return False

    def add(self, entry: dict[str, Any]) -> None:
        """Record a written part file; the manifest is saved at most every :data:`SAVE_SECONDS`."""
        self.shards[entry["key"]] = entry
        if time.monotonic() - self._saved >= SAVE_SECONDS:
            self.save()

    def finish(self, shards: int, summary: ScoreSummary) -> None:
        """Mark the run complete with ``shards`` part files, drop entries beyond them, and save."""
        keys = {Shard(i, []).key for i in range(shards)}
        for key in [k for k in self.shards if k not in keys]:
            logger.warning("%s: dropping the manifest entry of %s, which is not part of these inputs", self.path, key)
            del self.shards[key]
        self.complete = True
        self.save(totals={"shards": shards, "records": summary.records, "scored": summary.scored,
                          "errors": summary.errors})

    def save(self, totals: dict[str, int] | None = None) -> None:
        """Write the manifest atomically."""
        data = {**self.header, "complete": self.complete, "totals": totals,
                "shards": dict(sorted(self.shards.items()))}
        tmp = self.directory / f".{MANIFEST}.{uuid.uuid4().hex}{TMP_SUFFIX}"
        try:
            with tmp.open("w", encoding="utf-8") as stream:
                json.dump(data, stream, indent=1, ensure_ascii=False)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ScoringError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        self._saved = time.monotonic()


def count_part(summary: ScoreSummary, entry: dict[str, Any], *, resumed: bool = False) -> None:
    """Add a part file's counts to ``summary``."""
    summary.records += entry["records"]
    summary.scored += entry["scored"]
    summary.errors += entry["errors"]
    summary.skipped += entry.get("skipped", 0)
    if resumed:
        summary.resumed += entry["records"]
    for total, counts in ((summary.narratives, entry.get("narratives", {})), (summary.roles, entry.get("roles", {}))):
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n


