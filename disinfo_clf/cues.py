"""Cue phrases: lowercase regular expressions that signal a narrative in text.

One :class:`CueMatcher` compiles every cue of every narrative into a single pattern and scans a
text once; it serves both the taxonomy's tagging and the linear model's cue features.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse

try:  # Python 3.11+
    from re import _constants as _sre_constants, _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_MAX_RANGE = 64
"""A character class spanning more characters than this is treated as "could start with anything"."""


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
        # Every cue of every label, in order: the first alternative that matches at a position wins.
        alternatives = [(j, cue) for j, label in enumerate(self.labels) for cue in self.cues[label]]
        self._pattern, self._owner = _dispatch_pattern(alternatives)

    @functools.cached_property
    def _per_label(self) -> list[tuple[re.Pattern[str], dict[str, int]] | None]:
        """Per label, a pattern of its cues alone and which cue each group name stands for."""
        return [_dispatch_pattern(list(enumerate(self.cues[label]))) if self.cues[label] else None
                for label in self.labels]

    def present(self, text: str) -> set[int]:
        """Indices of the labels with a cue in ``text`` (one left-to-right scan)."""
        if self._pattern is None or not text:
            return set()
        owner = self._owner
        return {owner[m.lastgroup] for m in self._pattern.finditer(text.lower()) if m.lastgroup}

    def signals(self, text: str) -> dict[int, int]:
        """Label index → number of distinct cues of that label found in ``text``."""
        lowered = text.lower() if text else ""
        counts = {}
        for j, compiled in enumerate(self._per_label):
            if compiled is not None:
                pattern, cue_of = compiled
                found = {cue_of[m.lastgroup] for m in pattern.finditer(lowered) if m.lastgroup}
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


def _dispatch_pattern(alternatives: Sequence[tuple[int, str]]) -> tuple[re.Pattern[str] | None, dict[str, int]]:
    """One whole-word pattern for the ordered ``(owner, cue)`` alternatives, and the owner of
    each of its named groups (``match.lastgroup`` tells which owner's cue matched).

    It matches exactly as ``(?<!\\w)(?:cue1|cue2|...)(?!\\w)`` with one group per owner, but
    cues are sorted into buckets by the character they can start with, and a bucket is tried
    only where the text has that character: ``re`` tries alternatives one after the other, so a
    word start no longer costs a test of every cue. Within a bucket the cues keep their order,
    so the same cue wins at every position; a cue whose first character cannot be worked out
    goes into every bucket.
    """
    if not alternatives:
        return None, {}
    starts = [_first_chars(cue) for _, cue in alternatives]
    buckets: dict[str, list[int]] = {}
    for i, chars in enumerate(starts):
        for char in sorted(chars or ()):
            buckets.setdefault(char, []).append(i)
    anywhere = [i for i, chars in enumerate(starts) if chars is None]
    owner: dict[str, int] = {}

    def groups(members: list[int]) -> str:
        # Consecutive cues of one owner share a group: fewer groups, faster scans.
        parts = []
        for i in members:
            j, cue = alternatives[i]
            if parts and parts[-1][0] == j:
                parts[-1][1].append(cue)
            else:
                parts.append((j, [cue]))
        out = []
        for j, cues in parts:
            name = f"g{len(owner)}"
            owner[name] = j
            out.append(f"(?P<{name}>{'|'.join(f'(?:{c})' for c in cues)})")
        return "|".join(out)

    branches = [f"(?={re.escape(char)})(?:{groups(sorted(set(members) | set(anywhere)))})"
                for char, members in sorted(buckets.items())]
    if anywhere:
        guard = f"(?![{''.join(re.escape(c) for c in sorted(buckets))}])" if buckets else ""
        branches.append(f"{guard}(?:{groups(anywhere)})")
    return re.compile(rf"(?<!\w)(?:{'|'.join(branches)})(?!\w)"), owner


def _first_chars(cue: str) -> frozenset[str] | None:
    """The characters a match of ``cue`` can start with; ``None`` when that is not known."""
    try:
        parsed = _sre_parse.parse(cue)
        if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
            return None
        chars, nullable = _sequence_first(list(parsed))
    except Exception:  # a private parser may change: fall back to "could start anywhere"
        return None
    return None if chars is None or nullable else frozenset(chars)


def _sequence_first(items: list[Any]) -> tuple[set[str] | None, bool]:
    """First characters of a parsed sequence, and whether it can match the empty string."""
    c = _sre_constants
    found: set[str] = set()
    for op, av in items:
        if op in (c.ASSERT, c.ASSERT_NOT, c.AT):
            continue  # zero width
        if op is c.LITERAL:
            return found | {chr(av)}, False
        if op is c.IN:
            chars = _class_chars(av)
            return (None, False) if chars is None else (found | chars, False)
        if op is c.SUBPATTERN:
            _, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                return None, False
            chars, nullable = _sequence_first(list(sub))
        elif op is c.BRANCH:
            chars, nullable = set(), False
            for branch in av[1]:
                first, empty = _sequence_first(list(branch))
                if first is None:
                    return None, False
                chars |= first
                nullable = nullable or empty
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", None):
            low, _, sub = av
            chars, nullable = _sequence_first(list(sub))
            nullable = nullable or low == 0
        elif op is getattr(c, "ATOMIC_GROUP", None):
            chars, nullable = _sequence_first(list(av))
        else:
            return None, False
        if chars is None:
            return None, False
        found |= chars
        if not nullable:
            return found, False
    return found, True


def _class_chars(items: list[Any]) -> set[str] | None:
    """The characters of a parsed ``[...]`` class, or ``None`` for a negated or open-ended one."""
    c = _sre_constants
    chars: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            chars.add(chr(av))
        elif op is c.RANGE and av[1] - av[0] < _MAX_RANGE:
            chars.update(chr(x) for x in range(av[0], av[1] + 1))
        else:
            return None
    return chars
