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
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, overload

import numpy as np

from .models.roles import debunk_probabilities  # noqa: F401 (text_windows: public here too)
from .text.sentences import text_windows
from .matching.index import CaseMatch
from .text.language import detect_languages
from .models.meta import META_FILE, ModelDirectoryError, TextClassifier
from .models.registry import load_classifier
from .models.combined import read_proba
from .models.embedding_head import embeddings_of, encoder_for
from .models.manifest import fingerprint as manifest_fingerprint
from .matching.relevance import Relevance, load_relevance
from .resources import DEFAULT_MODEL_DIR, ROLE_MODEL_DIR, TIERS

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
    relevance: float | None = None
    """Calibrated probability that the text engages a known narrative at all (states or debunks
    it); ``None`` when the model has no relevance part."""
    relevant: bool | None = None
    """Whether ``relevance`` reaches its tuned threshold; when it does not, ``narratives`` is empty
    (the text pushes no known narrative). ``None`` when the model has no relevance part."""
    matches: list[CaseMatch] = field(default_factory=list)
    """The closest catalogued cases, best first (empty when the model has no relevance part)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = dataclasses.asdict(self)
        out["matches"] = [m.to_dict() for m in self.matches]
        return out

    def __str__(self) -> str:
        flagged = ", ".join(self.narratives) if self.narratives else "none above threshold"
        lines = []
        if self.relevant is False:
            lines.append(f"no known narrative (relevance {self.relevance:.0%}); the classifier's best guess:")
            flagged = "none (no known narrative)"
        elif self.relevance is not None:
            lines.append(f"relevance: {self.relevance:.0%} (engages a known narrative)")
        lines += [
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
        for i, m in enumerate(self.matches):
            lines.append(f"{'cases:' if i == 0 else '':<11}{m.score:.2f} {m.date or '????-??-??'} {m.title}"
                         + (f" <{m.url}>" if m.url else ""))
        return "\n".join(lines)


def _check_options(top_k: Any, batch_size: Any) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be a positive integer, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_texts(texts: Sequence[Any]) -> None:
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError(f"texts is one {type(texts).__name__}: Model.predict takes a list of str (or use predict(text))")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str: pass text strings (decode bytes first)")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty: every text needs some non-blank characters")


class Model:
    """A narrative classifier paired with the sentence role model; what :func:`load_model` returns."""

    def __init__(self, narratives: TextClassifier, roles: TextClassifier, model_id: str,
                 relevance: Relevance | None = None) -> None:
        self.narratives = narratives
        self.roles = roles
        self.model_id = model_id
        self.relevance = relevance
        """Relevance model and case index (``DIR/relevance``): gates ``narratives`` and gives
        ``matches``; ``None``: predictions carry ``relevance=None`` and no matches."""
        self.directory: Path | None = None
        """The model directory it was loaded from (``None`` when assembled in code)."""
        if "debunk" not in roles.labels:
            raise ModelDirectoryError(f"the role model's labels {list(roles.labels)} have no 'debunk': pass a claim/debunk model")
        self._names = narratives.meta.label_names
        thresholds = narratives.meta.decision_thresholds
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        self._label_array = np.asarray(list(narratives.labels), dtype=object)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) over everything that decides this model's predictions: every file of its
        directory and of the parts it names (cards, plots and metrics aside), the shipped role
        model when it uses that, the case index's data and the weights of the encoder it reads.
        ``score --resume`` refuses to continue an output written with another fingerprint."""
        digest = hashlib.sha256(self.model_id.encode("utf-8"))
        if self.directory is not None:
            digest.update(manifest_fingerprint(self.directory).encode("ascii"))
            if not Path(self.directory, "role", META_FILE).is_file():
                digest.update(manifest_fingerprint(ROLE_MODEL_DIR).encode("ascii"))
        if self.relevance is not None:
            digest.update(json.dumps(self.relevance.index.meta.to_dict(), sort_keys=True).encode("utf-8"))
        spec = self._embedding_spec()
        if spec is not None:
            digest.update(encoder_for(spec).fingerprint.encode("ascii"))
        return digest.hexdigest()

    @property
    def labels(self) -> list[str]:
        """Narrative ids, in score-column order."""
        return list(self.narratives.labels)

    def _embedding_spec(self) -> Any:
        specs = {(s.name_or_path, s.backend, s.prefix): s for s in (*embeddings_of(self.narratives), *embeddings_of(self.roles))}
        return next(iter(specs.values())) if len(specs) == 1 else None

    def embed(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray | None:
        """Embeddings of ``texts`` from the one encoder every embedding-reading part shares, or
        ``None`` when no part reads embeddings (or the parts read different encoders)."""
        spec = self._embedding_spec()
        if spec is None or not texts:
            return None
        # A window that recurs (boilerplate, a repeated title) is embedded once and copied back.
        unique = list(dict.fromkeys(texts))
        vectors = encoder_for(spec).embed(unique, prefix=spec.prefix, batch_size=batch_size,
                                          show_progress_bar=show_progress_bar)
        if len(unique) == len(texts):
            return vectors
        position = {text: i for i, text in enumerate(unique)}
        return vectors[[position[text] for text in texts]]

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        batch_size: int = 256,
        show_progress_bar: bool | None = None,
    ) -> list[Prediction]:
        """Predictions for a list of texts, in the same order."""
        _check_texts(texts)
        _check_options(top_k, batch_size)
        if not texts:
            return []
        windows = [text_windows(t) for t in texts]
        flat = [t[s:e] for t, ws in zip(texts, windows) for s, e in ws]
        languages = detect_languages(texts)
        window_languages = [lang for lang, ws in zip(languages, windows) for _ in ws]
        # One encoder pass over the windows feeds every part that reads embeddings.
        embeddings = self.embed(flat, batch_size=batch_size, show_progress_bar=show_progress_bar)
        probs = read_proba(self.narratives, flat, embeddings=embeddings, languages=window_languages,
                           batch_size=batch_size, show_progress_bar=show_progress_bar)
        # Each window is read as its own paragraph; EUvsDisinfo debunk wording counts as it does in segment().
        debunk = debunk_probabilities(flat, self.roles, contexts=flat, embeddings=embeddings, languages=window_languages)
        relevance, matches = self._relevance(flat, windows, languages, embeddings, batch_size, show_progress_bar)
        labels = self.labels
        # The role of a text: the length-weighted mean of its windows' debunk probabilities.
        counts = np.fromiter(map(len, windows), dtype=np.int64, count=len(windows))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        lengths = np.fromiter((e - s for ws in windows for s, e in ws), dtype=np.float64, count=len(flat))
        text_debunk = np.add.reduceat(debunk * lengths, starts) / np.maximum(np.add.reduceat(lengths, starts), 1e-9)
        # Per text: the highest probability of its windows, and its labels by probability (whole batch at once).
        text_probs = probs[starts] if len(flat) == len(texts) else np.maximum.reduceat(probs, starts, axis=0)
        orders = np.argsort(-text_probs, axis=1, kind="stable")
        ranked = self._label_array[orders].tolist()
        ranked_probs = np.take_along_axis(text_probs, orders, axis=1).tolist()
        ranked_above = np.take_along_axis(text_probs >= self._thresholds, orders, axis=1).tolist()
        tops, debunks = orders[:, 0].tolist(), text_debunk.tolist()
        flagged = [True] * len(texts) if relevance is None else relevance[1].tolist()
        kept = len(labels) if top_k is None else top_k
        out: list[Prediction] = []
        for index, (text, ws) in enumerate(zip(texts, windows)):
            names, values, p_debunk = ranked[index], ranked_probs[index], debunks[index]
            best = int(np.argmax(probs[starts[index]:starts[index] + len(ws), tops[index]])) if len(ws) > 1 else 0
            s, e = ws[best]
            out.append(
                Prediction(
                    narrative=names[0],
                    name=self._names.get(names[0], names[0]),
                    score=values[0],
                    scores=dict(zip(names[:kept], values[:kept])),
                    narratives=list(compress(names, ranked_above[index])) if flagged[index] else [],
                    role="debunk" if p_debunk >= 0.5 else "claim",
                    role_score=p_debunk if p_debunk >= 0.5 else 1.0 - p_debunk,
                    evidence=Evidence(text=text[s:e], start=s, end=e),
                    language=languages[index],
                    relevance=None if relevance is None else round(float(relevance[0][index]), 4),
                    relevant=None if relevance is None else bool(relevance[1][index]),
                    matches=matches[index] if matches else [],
                )
            )
        return out

    def _relevance(self, flat: list[str], windows: list[list[tuple[int, int]]], languages: list[str | None],
                   embeddings: np.ndarray | None, batch_size: int, show_progress_bar: bool | None,
                   ) -> tuple[tuple[np.ndarray, np.ndarray] | None, list[list[CaseMatch]]]:
        """``((probabilities, flags), matches)`` per text, or ``(None, [])`` without a relevance part."""
        if self.relevance is None:
            return None, []
        spec = self._embedding_spec()
        shared = embeddings is not None and spec is not None and spec.prefix == self.relevance.prefix and \
            encoder_for(spec).fingerprint == self.relevance.index.meta.encoder_fingerprint
        owners = np.repeat(np.arange(len(windows)), [len(ws) for ws in windows])
        probabilities, matches = self.relevance.assess(flat, owners, languages, embeddings=embeddings if shared else None,
                                                       batch_size=batch_size, show_progress_bar=show_progress_bar)
        return (probabilities, self.relevance.model.flags(probabilities, languages)), matches


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str) -> Model:
    narratives = load_classifier(directory)
    role_dir = Path(directory, "role")
    roles = load_classifier(role_dir if Path(role_dir, META_FILE).is_file() else ROLE_MODEL_DIR)
    model_id = narratives.meta.model_id or Path(directory).name
    model = Model(narratives, roles, model_id, relevance=load_relevance(directory))
    model.directory = Path(directory)
    return model


def load_model(path: str | Path | None = None) -> Model:
    """Load (once per process) a model directory, a shipped tier by name (``"default"``, the
    multilingual model, or ``"fast"``, the English TF-IDF model), or the default when ``path`` is None.

    The role model comes from ``DIR/role`` when the directory has one, else the shipped one; the
    relevance model (with the shipped case index) from ``DIR/relevance`` when there is one.
    """
    if isinstance(path, str) and path in TIERS:
        directory = TIERS[path]
    else:
        directory = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not directory.is_dir():
        raise ModelDirectoryError(
            f"model directory {directory} does not exist: pass a directory written by `disinfo-clf train`, "
            "or model=None for the embedded default"
        )
    return _load_cached(str(directory.resolve()))


def resolve_model(model: Model | str | os.PathLike[str] | None) -> Model:
    """The loaded model for any ``model`` value an entry point takes: ``None`` or ``"default"`` (the
    embedded multilingual default), ``"fast"``, a model directory (str or Path), or a :class:`Model`."""
    if isinstance(model, Model) or callable(getattr(model, "predict", None)):
        return model  # a Model, or an object that answers Model.predict (a test double, a wrapper)
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model is {type(model).__name__} {model!r}: pass None (the embedded default), \"default\", "
                        "\"fast\", a model directory (str or Path) or a Model from load_model()")
    return load_model(model)


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
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError(f"texts is {type(texts).__name__}: decode it first, for example texts.decode('utf-8')")
    if isinstance(texts, (Mapping, set, frozenset)) or not isinstance(texts, (str, Iterable)):
        kind = "a mapping (pass its text, e.g. record['text'])" if isinstance(texts, Mapping) else (
            "a set, whose order is arbitrary" if isinstance(texts, (set, frozenset)) else type(texts).__name__)
        raise TypeError(f"texts is {kind}: pass a string or a list of strings")
    loaded = resolve_model(model)
    if isinstance(texts, str):
        if not texts.strip():
            raise ValueError("text is empty: pass a text with some non-blank characters")
        return loaded.predict([texts], top_k=top_k, batch_size=batch_size, show_progress_bar=show_progress_bar)[0]
    if not isinstance(texts, Sequence):
        texts = list(texts)
    return loaded.predict(list(texts), top_k=top_k, batch_size=batch_size, show_progress_bar=show_progress_bar)
