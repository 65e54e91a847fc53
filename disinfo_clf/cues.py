"""Cue phrases: lowercase regular expressions that signal a narrative in text.

A cue is written in RE2 syntax (https://github.com/google/re2/wiki/Syntax), with ``\\w \\W \\d \\D
\\s \\S`` meaning what they mean in Python (Unicode letters, digits and underscore; Unicode
digits; Unicode white space); ``\\b`` and ``\\B`` keep RE2's meaning, a boundary between ASCII word
and non-word characters. A cue matches whole words only: the characters just before and just
after a match are not word characters. Lookaround (``(?=``, ``(?!``, ``(?<=``, ``(?<!``) and
backreferences are refused; :func:`cue_with_exclusions` writes "X, except after A or before B"
without them.

One :class:`CueMatcher` answers "which cues occur in this text" for every cue of every label in
one pass, with google-re2 (a literal prefilter, then each candidate cue), in time linear in the
text whatever the cues: a cue from an untrusted model directory cannot make matching hang.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse

_WORD = r"\pL\pN_"
_SPACE = r"\t-\r\x1c-\x1f\x85\pZ"
_OUTSIDE = {"w": f"[{_WORD}]", "W": f"[^{_WORD}]", "d": r"\p{Nd}", "D": r"\P{Nd}", "s": f"[{_SPACE}]", "S": f"[^{_SPACE}]"}
_INSIDE = {"w": _WORD, "d": r"\p{Nd}", "s": _SPACE}
_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")
_MAX_CUE_CHARS = 5000
_MAX_MEM = 32 << 20
"""Bytes one compiled cue may use (RE2 refuses a larger pattern rather than grow)."""


class CueError(ValueError):
    """A cue that is not a usable regular expression; the message names the label and the cue."""


def _re2() -> Any:
    try:
        import re2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError('cue matching needs google-re2: pip install "google-re2>=1.1"') from exc
    return re2


def _options() -> Any:
    options = _re2().Options()
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


class _Refused(ValueError):
    """Cue syntax that RE2 cannot match in linear time (the message says which)."""


def _to_re2(cue: str) -> str:
    """The RE2 pattern for ``cue``: Python's Unicode meaning of ``\\w \\d \\s`` (and their
    negations) spelled out; raises ``ValueError`` for lookaround and backreferences."""
    out: list[str] = []
    i, n, in_class, class_start = 0, len(cue), False, 0
    while i < n:
        char = cue[i]
        if char == "\\":
            escaped = cue[i + 1:i + 2]
            if not escaped:
                raise _Refused("ends with a lone backslash")
            if escaped in "123456789":
                raise _Refused(f"uses a backreference (\\{escaped}), which RE2 cannot match")
            if escaped == "Q":
                end = cue.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(cue[i:end])
                i = end
                continue
            if in_class and escaped in "WDS":
                raise _Refused(f"uses \\{escaped} inside [...]; write (?:\\{escaped}|[...]) instead")
            table = _INSIDE if in_class else _OUTSIDE
            out.append(table.get(escaped, cue[i:i + 2]))
            i += 2
            continue
        if in_class:
            if char == "]" and i > class_start:
                in_class = False
            elif cue.startswith("[:", i) and cue.find(":]", i + 2) > 0:
                end = cue.find(":]", i + 2) + 2
                out.append(cue[i:end])
                i = end
                continue
        elif char == "[":
            in_class = True
            class_start = i + 1 + (cue[i + 1:i + 2] == "^")
            out.append(cue[i:class_start])
            i = class_start
            continue
        elif cue.startswith(_LOOKAROUND, i):
            raise _Refused("uses lookaround ((?=, (?!, (?<=, (?<!), which RE2 cannot match; write the "
                           "exceptions out with disinfo_clf.cues.cue_with_exclusions")
        out.append(char)
        i += 1
    return "".join(out)


def _whole_word(pattern: str) -> str:
    return f"(?:^|[^{_WORD}])(?:{pattern})(?:[^{_WORD}]|$)"


_BOUNDARY = rf"(?:^|$|[^{_WORD}])"


def search_pattern(pattern: str) -> Any:
    """A case-insensitive RE2 pattern (``.search(text)``) telling whether Python regex ``pattern``
    occurs in a text, in time linear in the text: ``\\w`` and the rest keep their Unicode meaning,
    and ``\\b``, Python's Unicode word boundary, becomes a non-word character or the text's edge
    (the same answer to "does it occur"; a match may then include that character)."""
    options = _options()
    options.case_sensitive = False
    return _re2().compile(_to_re2(pattern).replace(r"\b", _BOUNDARY), options)


def check_cue(cue: str) -> str | None:
    """Why ``cue`` cannot be used (``None`` when it can)."""
    if not isinstance(cue, str) or not cue.strip():
        return "a cue must be a non-empty string"
    if len(cue) > _MAX_CUE_CHARS:
        return f"is longer than {_MAX_CUE_CHARS} characters"
    try:
        _re2().compile(_whole_word(_to_re2(cue)), _options())
    except _Refused as exc:
        return str(exc)
    except _re2().error as exc:
        return (f"is not a valid regular expression in RE2 syntax ({exc}); cues have no lookaround, "
                "backreferences, possessive repeats or atomic groups")
    return None


class CueMatcher:
    """Which labels' cues occur in a text: whole words, case-insensitive (text is lowercased)."""

    def __init__(self, label_cues: Mapping[str, Sequence[str]]) -> None:
        self.labels = list(label_cues)
        self.cues = {label: list(cues) for label, cues in label_cues.items()}
        self._build()

    def _build(self) -> None:
        """Compile every cue into one filter; a cue that cannot be used raises :class:`CueError`
        naming its label and why (each cue is compiled once: a failure is explained by :func:`check_cue`)."""
        self._owner = [j for j, label in enumerate(self.labels) for _ in self.cues[label]]
        self._filter = None
        if self._owner:
            re2 = _re2()
            # RE2's FilteredRE2: a Set of literal atoms finds the candidate cues, then only those run.
            self._filter = re2.Filter()
            for label in self.labels:
                for cue in self.cues[label]:
                    try:
                        if not isinstance(cue, str) or not cue.strip() or len(cue) > _MAX_CUE_CHARS:
                            raise ValueError
                        self._filter.Add(_whole_word(_to_re2(cue)), _options())
                    except Exception as exc:
                        raise CueError(f"label {label!r}, cue {cue!r}: {check_cue(cue) or exc}") from None
            self._filter.Compile()

    def __getstate__(self) -> dict[str, Any]:  # the compiled filter cannot be pickled: rebuild it
        return {"labels": self.labels, "cues": self.cues}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.labels, self.cues = state["labels"], state["cues"]
        self._build()

    def found(self, text: str) -> list[int]:
        """Indices (in label order, then cue order) of the distinct cues that occur in ``text``."""
        if self._filter is None or not text:
            return []
        # Lone surrogates become "?", a non-word character, as Python's re reads them.
        return self._filter.Match(text.lower().encode("utf-8", "replace")) or []

    def present(self, text: str) -> set[int]:
        """Indices of the labels with a cue in ``text``."""
        owner = self._owner
        return {owner[i] for i in self.found(text)}

    def signals(self, text: str) -> dict[int, int]:
        """Label index → number of distinct cues of that label found in ``text``."""
        counts: dict[int, int] = {}
        for i in self.found(text):
            counts[self._owner[i]] = counts.get(self._owner[i], 0) + 1
        return counts

    def matrix(self, texts: Iterable[str], weight: float = 1.0) -> sparse.csr_matrix:
        """``(len(texts), len(labels))`` sparse matrix: ``weight`` where a label has a cue in the text."""
        rows: list[int] = []
        cols: list[int] = []
        n = 0
        match, owner = (self._filter.Match if self._filter is not None else None), self._owner
        for n, text in enumerate(texts, 1):
            # found() inlined: one call per text less, on the fast tier's hot path
            hits = match(text.lower().encode("utf-8", "replace")) if match is not None and text else None
            if hits:
                labels = {owner[i] for i in hits}
                rows.extend([n - 1] * len(labels))
                cols.extend(labels)
        data = np.full(len(rows), weight, dtype=np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, len(self.labels)), dtype=np.float32)


def cue_with_exclusions(cue: str, *, not_after: Sequence[str] = (), not_before: Sequence[str] = ()) -> str:
    """A cue matching what ``cue`` matches, except right after one of the ``not_after`` texts or
    right before one of the ``not_before`` texts (literal, lowercase, spaces included).

    The same as Python's ``(?<!A)(?<!B)cue(?!C|D)`` for a whole-word cue, written without
    lookaround: the exceptions become alternatives over the few characters around the match.
    """
    for text in (*not_after, *not_before):
        if not isinstance(text, str) or not text:
            raise ValueError(f"exceptions must be non-empty strings, got {text!r}")
    out = f"(?:{cue})"
    if not_after:
        out = r"\w*(?:" + "|".join(_witnesses(list(not_after), reverse=True)) + ")" + out
    if not_before:
        out += "(?:" + "|".join(_witnesses(list(not_before), reverse=False)) + r")\w*"
    return out


def _witnesses(excluded: list[str], reverse: bool) -> list[str]:
    """Alternatives that show none of ``excluded`` ends (``reverse``) or starts the neighbouring text:
    the text stops, or differs from every excluded text, within their length. The character next
    to the match must be a non-word character (whole words); ``\\w*`` on the far side lets the
    alternative end on a word boundary."""
    edge = "^" if reverse else "$"
    found = [edge]

    def walk(part: str) -> None:
        if part and part in excluded:
            return
        if reverse:
            following = {w[-len(part) - 1] for w in excluded if w.endswith(part) and len(w) > len(part)}
        else:
            following = {w[len(part)] for w in excluded if w.startswith(part) and len(w) > len(part)}
        if not part:
            following = {c for c in following if not re.fullmatch(r"\w", c)}
            found.append(f"[^\\w{''.join(map(_class_char, sorted(following)))}]")
        else:
            other = f"[^{''.join(map(_class_char, sorted(following)))}]" if following else "(?s:.)"
            literal = "".join(map(_literal_char, part))
            found.append(f"(?:{edge}|{other}){literal}" if reverse else f"{literal}(?:{edge}|{other})")
        for char in sorted(following):
            walk(char + part if reverse else part + char)

    walk("")
    return found


def _literal_char(char: str) -> str:
    return "\\" + char if char in r"\.^$|?*+()[]{}" else char


def _class_char(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char
