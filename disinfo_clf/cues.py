"""Cue phrases: lowercase regular expressions that signal a narrative in text.

One :class:`CueMatcher` compiles every cue of every narrative into a single pattern and scans a
text once; it serves both the taxonomy's tagging and the linear model's cue features.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse


class CueError(ValueError):
    """A cue that is not a usable regular expression; the message names the label and the cue."""


def check_cue(cue: str) -> str | None:
    """Why ``cue`` cannot be used (``None`` when it can)."""
    if not isinstance(cue, str) or not cue.strip():
        return "a cue must be a non-empty string"
    if "(?P<" in cue:
        return "uses a named group; use (?:...) instead"
    try:
        re.compile(cue)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


class CueMatcher:
    """Which labels' cues occur in a text: whole words, case-insensitive (text is lowercased)."""

    def __init__(self, label_cues: Mapping[str, Sequence[str]]) -> None:
        self.labels = list(label_cues)
        self.cues = {label: list(cues) for label, cues in label_cues.items()}
        groups = []
        for j, label in enumerate(self.labels):
            for i, cue in enumerate(self.cues[label]):
                problem = check_cue(cue)
                if problem:
                    raise CueError(f"label {label!r}, cue {cue!r}: {problem}")
                groups.append(f"(?P<n{j}_{i}>{cue})")
        self._pattern = re.compile(rf"(?<!\w)(?:{'|'.join(groups)})(?!\w)") if groups else None
        self._owner = {f"n{j}_{i}": j for j, label in enumerate(self.labels) for i in range(len(self.cues[label]))}

    def signals(self, text: str) -> dict[int, int]:
        """Label index → number of distinct cues of that label found in ``text``."""
        if self._pattern is None or not text:
            return {}
        found: dict[int, set[str]] = {}
        for match in self._pattern.finditer(text.lower()):
            name = match.lastgroup
            if name is not None:
                found.setdefault(self._owner[name], set()).add(name)
        return {j: len(names) for j, names in found.items()}

    def matrix(self, texts: Iterable[str], weight: float = 1.0) -> sparse.csr_matrix:
        """``(len(texts), len(labels))`` sparse matrix: ``weight`` where a label has a cue in the text."""
        rows: list[int] = []
        cols: list[int] = []
        n = 0
        for n, text in enumerate(texts, 1):
            for j in self.signals(text):
                rows.append(n - 1)
                cols.append(j)
        data = np.full(len(rows), weight, dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, len(self.labels)), dtype=np.float32)
