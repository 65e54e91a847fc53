"""Fingerprints of a scoring run's inputs and model, so that ``--resume`` can refuse to continue an
output with other inputs, other reader options or another model."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..feeds.folders import walk_folder
from ..feeds.sources import filesystem, is_uri, parquet_files
from ..text.textio import printable_path

__all__ = ["describe_differences", "directory_fingerprint", "fingerprint_sources", "input_fingerprint", "model_fingerprint"]

_CHUNK = 1024 * 1024
STDIN = "-"


def input_fingerprint(inputs: Sequence[str | Path], *, text_field: str | None = None, id_field: str | None = None,
                      input_format: str | None = None) -> dict[str, Any]:
    """What the records of ``inputs`` depend on: every input's path (as given), size and streamed
    SHA-256 (a folder: over the entries its walk reads, with their relative paths), and the
    reader options. Standard input has no fingerprint (``{"path": "-", "kind": "stdin"}``)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    described = [_describe_input(inp) for inp in inputs]
    return {"inputs": described,
            "reader": {"text_field": text_field, "id_field": id_field, "input_format": input_format}}


def _describe_input(inp: str | Path) -> dict[str, Any]:
    shown = printable_path(inp)
    if str(inp) == STDIN:
        return {"path": STDIN, "kind": "stdin"}
    path = Path(inp)
    if path.is_dir():
        digest, files, size = hashlib.sha256(), 0, 0
        for entry in walk_folder(path):
            relative = os.path.relpath(entry.path, printable_path(path))
            digest.update(json.dumps([relative, entry.kind, entry.error, entry.warning]).encode("utf-8"))
            if entry.data is not None:
                files += 1
                size += len(entry.data)
                digest.update(len(entry.data).to_bytes(8, "big") + hashlib.sha256(entry.data).digest())
        return {"path": shown, "kind": "folder", "files": files, "size": size, "sha256": digest.hexdigest()}
    size, digest = _file_digest(path)
    return {"path": shown, "kind": "file", "size": size, "sha256": digest}


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def directory_fingerprint(directory: str | Path) -> str:
    """SHA-256 over the relative paths and contents of every file under ``directory`` (sorted)."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        size, file_digest = _file_digest(path)
        digest.update(json.dumps([path.relative_to(root).as_posix(), size, file_digest]).encode("utf-8"))
    return digest.hexdigest()


def model_fingerprint(model: Any) -> str:
    """A SHA-256 (hex) that changes when the model's weights or settings change.

    A model's own ``fingerprint`` string is used when it has one; else the files of its
    ``directory`` (or ``model_dir``) when it names one; else its ``model_id`` with the settings of
    its classifiers (labels, thresholds, calibration, ``ModelMeta``) and, where exposed, the
    weights of a linear classifier.
    """
    own = getattr(model, "fingerprint", None)
    if isinstance(own, str) and own:
        return own
    directory = getattr(model, "directory", None) or getattr(model, "model_dir", None)
    if directory is not None and Path(directory).is_dir():
        return directory_fingerprint(directory)
    digest = hashlib.sha256(str(getattr(model, "model_id", "")).encode("utf-8"))
    for part in ("narratives", "roles"):
        classifier = getattr(model, part, None)
        meta = getattr(classifier, "meta", None)
        if meta is not None and dataclasses.is_dataclass(meta):
            digest.update(json.dumps(dataclasses.asdict(meta), sort_keys=True, default=str).encode("utf-8"))
        for name in ("intercept", "_coef_t"):
            array = getattr(classifier, name, None)
            if hasattr(array, "tobytes"):
                digest.update(array.tobytes())
    return digest.hexdigest()


def describe_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Plain-language differences between two manifests (see :func:`input_fingerprint`); empty if none."""
    found: list[str] = []
    old_inputs, new_inputs = old.get("inputs", []), new.get("inputs", [])
    if [i.get("path") for i in old_inputs] != [i.get("path") for i in new_inputs]:
        found.append(f"the inputs were {', '.join(str(i.get('path')) for i in old_inputs) or 'none'}, "
                     f"now {', '.join(str(i.get('path')) for i in new_inputs) or 'none'}")
    else:
        for before, now in zip(old_inputs, new_inputs):
            if before != now:
                size = (f" (size {before.get('size')} -> {now.get('size')} bytes)"
                        if before.get("size") != now.get("size") else " (same size, other content)")
                found.append(f"input {now.get('path')} changed{size}")
    old_reader, new_reader = old.get("reader") or {}, new.get("reader") or {}
    for key in sorted(set(old_reader) | set(new_reader)):
        if old_reader.get(key) != new_reader.get(key):
            found.append(f"--{key.replace('_', '-')} was {old_reader.get(key)!r}, now {new_reader.get(key)!r}")
    if old.get("output_format") != new.get("output_format"):
        found.append(f"the output format was {old.get('output_format')!r}, now {new.get('output_format')!r}")
    old_settings, new_settings = old.get("settings") or {}, new.get("settings") or {}
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            found.append(f"{key.replace('_', ' ')} was {old_settings.get(key)!r}, now {new_settings.get(key)!r} "
                         "(it can change the last digits of scores, so the output would not be one run's bytes)")
    old_model, new_model = old.get("model") or {}, new.get("model") or {}
    if old_model.get("id") != new_model.get("id"):
        found.append(f"the model was {old_model.get('id')!r}, now {new_model.get('id')!r}")
    elif old_model.get("fingerprint") != new_model.get("fingerprint"):
        found.append(f"the model {new_model.get('id')!r} has other weights or settings (its fingerprint differs)")
    return found


def fingerprint_sources(inputs: Sequence[str | Path], *, text_field: str | None = None, id_field: str | None = None,
                        input_format: str | None = None) -> dict[str, Any]:
    """What a resumed run checks it still reads, as :func:`~disinfo_clf.scoring.input_fingerprint` gives it
    (each input's size and SHA-256, the reader options); a Parquet folder's files are hashed too, a
    remote input is described by its files' sizes and modification times."""

    described = []
    for inp in map(str, inputs):
        if is_uri(inp):
            described.append(_describe_remote(inp))
        elif Path(inp).is_dir() and (parquet := parquet_files(Path(inp))):
            described.append(_describe_parquet_folder(inp, parquet))
        else:
            described.append(input_fingerprint([inp])["inputs"][0])
    reader = input_fingerprint([], text_field=text_field, id_field=id_field, input_format=input_format)["reader"]
    return {"inputs": described, "reader": reader}


def _describe_parquet_folder(inp: str, files: list[str]) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    for name in files:
        file_digest = hashlib.sha256()
        with open(name, "rb") as stream:
            while block := stream.read(1 << 20):
                file_digest.update(block)
                size += len(block)
        digest.update(f"{os.path.relpath(name, inp)}\n".encode("utf-8", "surrogateescape") + file_digest.digest())
    return {"path": inp, "kind": "parquet folder", "files": len(files), "size": size, "sha256": digest.hexdigest()}


def _describe_remote(uri: str) -> dict[str, Any]:
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    info = fs.get_file_info(root)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True)) if info.type == pafs.FileType.Directory else [info]
    files = sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)
    digest = hashlib.sha256()
    for item in files:
        digest.update(f"{item.path}\n{item.size}\n{item.mtime_ns}\n".encode("utf-8"))
    return {"path": uri, "kind": "remote", "files": len(files), "size": sum(i.size or 0 for i in files),
            "sha256": digest.hexdigest(), "note": "remote files: sizes and modification times, not contents"}
