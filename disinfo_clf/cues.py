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
        for label, cues in self.cues.items():
            for cue in cues:
                problem = check_cue(cue)
                if problem:
                    raise CueError(f"label {label!r}, cue {cue!r}: {problem}")
        # One group per label keeps the scan fast (a group per cue is ~15x slower in `re`);
        # the per-cue patterns, used to count distinct cues, only run for labels found.
        groups = [f"(?P<n{j}>{'|'.join(f'(?:{c})' for c in self.cues[label])})"
                  for j, label in enumerate(self.labels) if self.cues[label]]
        self._pattern = _whole_words("|".join(groups)) if groups else None
        self._per_label = [
            _whole_words("|".join(f"(?P<c{i}>{c})" for i, c in enumerate(self.cues[label]))) if self.cues[label] else None
            for label in self.labels
        ]

    def present(self, text: str) -> set[int]:
        """Indices of the labels with a cue in ``text`` (one left-to-right scan)."""
        if self._pattern is None or not text:
            return set()
        return {int(m.lastgroup[1:]) for m in self._pattern.finditer(text.lower()) if m.lastgroup}

    def signals(self, text: str) -> dict[int, int]:
        """Label index → number of distinct cues of that label found in ``text``."""
        lowered = text.lower() if text else ""
        counts = {}
        for j, pattern in enumerate(self._per_label):
            if pattern is not None:
                found = {m.lastgroup for m in pattern.finditer(lowered)}
                if found:
                    counts[j] = len(found)
        return counts

    def matrix(self, texts: Iterable[str], weight: float = 1.0) -> sparse.csr_matrix:
        """``(len(texts), len(labels))`` sparse matrix: ``weight`` where a label has a cue in the text."""
        rows: list[int] = []
        cols: list[int] = []
        n = 0
        for n, text in enumerate(texts, 1):
            for j in self.present(text):
                rows.append(n - 1)
                cols.append(j)
        data = np.full(len(rows), weight, dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, len(self.labels)), dtype=np.float32)


def _whole_words(alternation: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")
