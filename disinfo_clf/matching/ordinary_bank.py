"""Ordinary real text the relevance flag compares a window with: on-topic reporting that engages no narrative.

A text close to the catalogued cases may still be ordinary news on the same topic. The relevance model
therefore also reads how close a window comes to a bank of ordinary real-text windows (the embeddings of
the real-text corpus's ``train`` split, ordinary kind), as :data:`ORDINARY_FEATURES`:

- ``ordinary_top1`` / ``ordinary_top5``: the best / mean of the five best cosine similarities to the bank;
- ``case_over_ordinary``: the best case similarity minus ``ordinary_top1`` (closer to a case than to news?);
- ``ordinary_centroid``: the similarity to the bank's mean embedding.

The bank is stored next to ``relevance.json`` as ``ordinary.safetensors`` (one ``embeddings`` tensor, n x dim,
float16); no pickles.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ORDINARY_FILE = "ordinary.safetensors"
ORDINARY_FEATURES = ("ordinary_top1", "ordinary_top5", "case_over_ordinary", "ordinary_centroid")
"""Features of a window read from the ordinary bank (after the case-similarity features)."""
TOP = 5
MIN_ROWS = TOP
_CHUNK = 4096


class OrdinaryBankError(ValueError):
    """An ordinary bank file that cannot be used; names the file."""


def ordinary_features(case_top1: np.ndarray, embeddings: np.ndarray, bank: np.ndarray,
                      exclude: np.ndarray | None = None) -> np.ndarray:
    """The :data:`ORDINARY_FEATURES` of windows (n) from their best case similarity, their embeddings
    (n x dim) and the bank (m x dim). ``exclude`` (n x m, bool) hides bank rows from a window: its own
    text and its translations while fitting, so that no window is compared with itself."""
    emb = np.asarray(embeddings, dtype=np.float32)
    b = np.asarray(bank, dtype=np.float32)
    if emb.ndim != 2 or b.ndim != 2 or emb.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings {emb.shape} and ordinary bank {b.shape} need the same width")
    top = np.empty((len(emb), TOP), dtype=np.float64)
    for start in range(0, len(emb), _CHUNK):
        sims = emb[start:start + _CHUNK] @ b.T
        if exclude is not None:
            sims = np.where(exclude[start:start + _CHUNK], -1.0, sims)
        top[start:start + _CHUNK] = -np.sort(-np.partition(sims, sims.shape[1] - TOP, axis=1)[:, -TOP:], axis=1)
    centroid = b.mean(axis=0)
    return np.column_stack([top[:, 0], top.mean(axis=1), np.asarray(case_top1, dtype=np.float64) - top[:, 0],
                            emb.astype(np.float64) @ centroid.astype(np.float64)])


def save_bank(bank: np.ndarray, directory: str | Path) -> Path:
    """Write the bank as float16 ``ordinary.safetensors`` into ``directory``."""
    from safetensors.numpy import save_file

    path = Path(directory, ORDINARY_FILE)
    save_file({"embeddings": np.ascontiguousarray(bank, dtype=np.float16)}, str(path), metadata={"format_version": "1"})
    return path


def load_bank(directory: str | Path, dim: int) -> np.ndarray:
    """The bank in ``directory`` as float32 (m x ``dim``), checked: present, one 2-D float tensor of
    ``dim`` columns and at least :data:`MIN_ROWS` rows, finite."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(directory, ORDINARY_FILE)
    if not path.is_file():
        raise OrdinaryBankError(f"{path} is missing: the relevance model reads ordinary-text features from it; "
                                "refit it (scripts/train_relevance.py)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise OrdinaryBankError(f"{path} is not a safetensors file ({exc})") from exc
    if set(tensors) != {"embeddings"}:
        raise OrdinaryBankError(f"{path}: expected one tensor 'embeddings', found {sorted(tensors)}")
    bank = tensors["embeddings"]
    if bank.dtype not in (np.float16, np.float32):
        raise OrdinaryBankError(f"{path}: 'embeddings' must be float16 or float32, not {bank.dtype}")
    if bank.ndim != 2 or bank.shape[1] != dim or bank.shape[0] < MIN_ROWS:
        raise OrdinaryBankError(f"{path}: 'embeddings' has shape {bank.shape}; the model needs at least "
                                f"{MIN_ROWS} rows of {dim} (its probe's width)")
    bank = bank.astype(np.float32)
    if not np.isfinite(bank).all():
        raise OrdinaryBankError(f"{path}: 'embeddings' holds non-finite values")
    return bank
