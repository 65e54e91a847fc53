"""Claim or debunk for a whole text, from its windows.

A fact-check restates the claim it refutes, often at length, and cites facts that read like any
statement; the mean of its windows' debunk probabilities then reads as a claim. The text-level
head reads a text of several windows of which at least one reads as debunk, at or above the head's
gate ``min_window`` (chosen on dev; a debunk refutes
somewhere): a logistic regression over summary features of the windows (mean, extremes, first and
last window, share of windows with debunk wording) and, optionally, the mean window embedding,
fitted on such whole texts (``scripts/train_text_role.py``) and Platt-calibrated on such dev texts,
so that its output is the probability a user reads as ``role_score``. Every other text keeps the
length-weighted mean of its windows' (calibrated) probabilities, which is below 0.5 for a text with
no debunk window. It lives in ``<model>/role/text_role.json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..text.sentences import has_debunk_cue
from .calibration import logit, sigmoid
from .meta import ModelDirectoryError

TEXT_ROLE_FILE = "text_role.json"
FEATURES: tuple[str, ...] = ("mean", "wmean", "max", "min", "first", "last", "cue_share", "multi")
"""Window summary features, each on the logit scale except ``cue_share`` (a share in [0, 1]) and
``multi`` (1 for a text of several windows: their spread then carries information)."""
MIN_WINDOW = 0.5
"""A text reads as debunk through the head only when one of its windows does: a debunk refutes somewhere."""
_CLIP = 6.0


def _logit(p: np.ndarray) -> np.ndarray:
    return np.clip(logit(p), -_CLIP, _CLIP)


def window_features(p_debunk: np.ndarray, lengths: np.ndarray, cues: np.ndarray, counts: Sequence[int],
                    embeddings: np.ndarray | None = None) -> np.ndarray:
    """One row per text of :data:`FEATURES` (then the mean window embedding when ``embeddings``
    are given); ``counts[i]`` consecutive windows belong to text ``i``."""
    z = _logit(p_debunk)
    rows = []
    pos = 0
    for n in counts:
        zi, li = z[pos:pos + n], np.asarray(lengths[pos:pos + n], dtype=np.float64)
        wmean = float(np.sum(sigmoid(zi) * li) / max(float(li.sum()), 1e-9))
        row = [float(zi.mean()), float(_logit(np.array([wmean]))[0]), float(zi.max()), float(zi.min()),
               float(zi[0]), float(zi[-1]), float(np.mean(cues[pos:pos + n])), float(n > 1)]
        if embeddings is not None:
            row += list(np.asarray(embeddings[pos:pos + n], dtype=np.float64).mean(axis=0))
        rows.append(row)
        pos += n
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)


def head_reads(p_debunk: np.ndarray, counts: Sequence[int], min_window: float = MIN_WINDOW) -> np.ndarray:
    """Per text, whether a text-level head reads it: several windows, one at ``min_window`` or above."""
    counts = np.asarray(counts, dtype=np.int64)
    if not len(counts):
        return np.zeros(0, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return (counts > 1) & (np.maximum.reduceat(np.asarray(p_debunk, dtype=np.float64), starts) >= min_window)


def weighted_mean(p_debunk: np.ndarray, lengths: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """Per text, the length-weighted mean of its windows' probabilities."""
    if not len(counts):
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))[:-1]]).astype(np.int64)
    lengths = np.asarray(lengths, dtype=np.float64)
    p = np.asarray(p_debunk, dtype=np.float64)
    return np.add.reduceat(p * lengths, starts) / np.maximum(np.add.reduceat(lengths, starts), 1e-9)


def debunk_cues(windows: Sequence[str], languages: Sequence[str | None]) -> np.ndarray:
    """Whether each window holds debunk wording (in English or its language)."""
    return np.array([has_debunk_cue(w, lang) for w, lang in zip(windows, languages)], dtype=bool)


@dataclass(frozen=True)
class TextRoleHead:
    """Logistic regression over :func:`window_features` (standardised), then Platt ``(a, b)``."""

    features: list[str]
    """Feature names, :data:`FEATURES` then ``emb0..`` when ``embedding_dim``."""
    coef: list[float]
    intercept: float
    center: list[float]
    scale: list[float]
    platt_a: float
    platt_b: float
    embedding_dim: int = 0
    """Size of the mean window embedding read (0: window probabilities only)."""
    min_window: float = MIN_WINDOW
    """The head reads a text only when one of its windows reaches this P(debunk)."""
    trained_on: str = ""
    """What it was fitted, chosen and calibrated on (for the card)."""

    def __post_init__(self) -> None:
        n = len(FEATURES) + self.embedding_dim
        if not (len(self.coef) == len(self.center) == len(self.scale) == n):
            raise ModelDirectoryError(f"text role head: {n} features expected, got coef {len(self.coef)}, "
                                      f"center {len(self.center)}, scale {len(self.scale)}: retrain it "
                                      "(scripts/train_text_role.py)")

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The uncalibrated logit per feature row."""
        x = (np.asarray(x, dtype=np.float64) - np.asarray(self.center)) / np.asarray(self.scale)
        coef = np.asarray(self.coef)
        # Row by row, so that a text's logit does not depend on the texts batched with it.
        return np.array([float(row @ coef) for row in x], dtype=np.float64) + self.intercept

    def probability(self, p_debunk: np.ndarray, lengths: np.ndarray, cues: np.ndarray, counts: Sequence[int],
                    embeddings: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(debunk) per text from its windows (see :meth:`applies` for which texts the
        head reads; the others get the length-weighted mean of their windows')."""
        if self.embedding_dim and (embeddings is None or embeddings.shape[1] != self.embedding_dim):
            got = None if embeddings is None else embeddings.shape[1]
            raise ModelDirectoryError(f"the text role head reads {self.embedding_dim}-dimensional window embeddings, "
                                      f"got {got}: pair it with the encoder it was trained on")
        x = window_features(p_debunk, lengths, cues, counts, embeddings if self.embedding_dim else None)
        return np.where(self.applies(p_debunk, counts), sigmoid(self.platt_a * self.decision(x) + self.platt_b),
                        weighted_mean(p_debunk, lengths, counts))

    def applies(self, p_debunk: np.ndarray, counts: Sequence[int]) -> np.ndarray:
        """Per text, whether the head reads it (see :func:`head_reads`)."""
        return head_reads(p_debunk, counts, self.min_window)

    def save(self, directory: str | Path) -> Path:
        """Write :data:`TEXT_ROLE_FILE` into ``directory``."""
        path = Path(directory, TEXT_ROLE_FILE)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TextRoleHead":
        """Read a head written by :meth:`save`, naming the file on any problem."""
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelDirectoryError(f"{path} is not a text role head ({exc}): rerun scripts/train_text_role.py") from exc


def load_text_role(role_directory: str | Path) -> TextRoleHead | None:
    """The head in ``role_directory`` when it has one, else ``None`` (the length-weighted mean applies)."""
    path = Path(role_directory, TEXT_ROLE_FILE)
    return TextRoleHead.load(path) if path.is_file() else None
