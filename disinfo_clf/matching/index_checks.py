"""What :meth:`~disinfo_clf.matching.index.CaseIndex.load` verifies before an index is searched: the
cases are the ones the embeddings were computed for (``data_sha256``), and every array has a float
dtype, the stated shape and finite values; a saved inverted-file layout is checked before faiss sees it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .casefile import IndexedCase, data_sha256

REBUILD = ("rebuild it with `disinfo-clf index build CASES -o DIR` (the shipped index: "
           "`python scripts/build_index.py`)")
"""How to fix a damaged index; the end of every error message here."""


def check_float_matrix(array: Any, shape: tuple[int, int], path: Path, key: str) -> np.ndarray:
    """``array`` as float32 after checking it is a float array of ``shape`` with finite values only."""
    if array is None:
        raise ValueError(f"{path} has no {key!r} tensor: {REBUILD}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{path}: {key!r} has dtype {array.dtype}, not a float type: {REBUILD}")
    if array.shape != shape:
        raise ValueError(f"{path}: {key!r} has shape {array.shape}, expected {shape}: {REBUILD}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum()) if array.ndim == 2 else 0
        raise ValueError(f"{path}: {key!r} holds NaN or infinite values ({bad} rows): {REBUILD}")
    return np.asarray(array, dtype=np.float32)


def check_cases(cases: Sequence[IndexedCase], expected_sha256: str, count: int, path: Path) -> None:
    """Refuse cases other than the ones the index was built for (changed, reordered, added or removed)."""
    if len(cases) != count:
        raise ValueError(f"{path} holds {len(cases)} cases, but the index description says {count}: {REBUILD}")
    if expected_sha256 and data_sha256(cases) != expected_sha256:
        raise ValueError(f"{path} is not the case list the embeddings were computed for (its sha256 differs from "
                         f"the index description's data_sha256; cases changed, reordered or damaged): {REBUILD}")


def check_ivf(centroids: Any, assign: Any, count: int, dim: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A saved inverted-file layout, checked so faiss never reads out of bounds: float centroids of
    width ``dim``, one integer list number in ``[0, len(centroids))`` per row."""
    if centroids is None or getattr(centroids, "ndim", 0) != 2 or len(centroids) < 1:
        raise ValueError(f"{path}: 'ivf_centroids' must be a non-empty (lists, {dim}) array: {REBUILD}")
    centroids = check_float_matrix(centroids, (len(centroids), dim), path, "ivf_centroids")
    if not np.issubdtype(assign.dtype, np.integer) or assign.shape != (count,):
        raise ValueError(f"{path}: 'ivf_assign' must hold one integer per case ({count}), got dtype {assign.dtype} "
                         f"and shape {assign.shape}: {REBUILD}")
    if count and (int(assign.min()) < 0 or int(assign.max()) >= len(centroids)):
        raise ValueError(f"{path}: 'ivf_assign' names lists outside 0..{len(centroids) - 1} "
                         f"(min {int(assign.min())}, max {int(assign.max())}): {REBUILD}")
    return centroids, assign.astype(np.int64)
