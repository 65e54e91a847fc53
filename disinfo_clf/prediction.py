"""Text → :class:`Prediction`: the most likely narrative, its score, and claim vs debunk.

Long texts are split into sentence windows, each window is scored, and a text's narrative
probability is the highest of its windows: a narrative pushed in one paragraph of a long
article is found, and the window that pushed it comes back as ``evidence``. The role (claim or
debunk) is read for the whole text by the text-level role head (``DIR/role/text_role.json``,
:mod:`disinfo_clf.models.text_role`) from its windows' debunk probabilities (EUvsDisinfo debunk
wording raises a window's probability, as in ``segment``), so a fact-check that restates a claim
before refuting it reads as ``debunk``; without a head, the length-weighted mean of the windows'.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from itertools import compress
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, overload

import numpy as np

from .models.roles import debunk_probabilities
from .models.text_role import TextRoleHead, debunk_cues, load_text_role, weighted_mean
from .text.sentences import text_windows
from .matching.index import CaseMatch
from .results import Evidence, Prediction
from .text.language import detect_languages
from .models.meta import META_FILE, ModelDirectoryError, TextClassifier
from .models.registry import load_classifier
from .models.combined import read_proba
from .models.embedding_head import embeddings_of, encoder_for
from .models.manifest import fingerprint as manifest_fingerprint
from .models.prototypes import PrototypeHead
from .narrative_files import NarrativeSource
from .narrative_heads import build_head
from .matching.relevance import Relevance, load_relevance
from .matching.stance import StanceGate, load_stance
from .resources import DEFAULT_MODEL_DIR, ROLE_MODEL_DIR, TIERS, WAR_NARRATIVES

logger = logging.getLogger(__name__)

WINDOW_CHARS = 400
"""Sentences are grouped into windows of about this many characters (training claims are this short)."""


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
                 relevance: Relevance | None = None, user: PrototypeHead | None = None,
                 standalone: bool = False, text_role: TextRoleHead | None = None,
                 stance: StanceGate | None = None) -> None:
        self.narratives = narratives
        self.roles = roles
        self.text_role = text_role
        """Claim or debunk for a whole text from its windows; ``None``: their length-weighted mean."""
        self.model_id = model_id
        self.relevance = relevance
        """Relevance model and case index (``DIR/relevance``): gates ``narratives`` and gives
        ``matches``; ``None``: predictions carry ``relevance=None`` and no matches."""
        self.stance = stance
        """The stance gate (``DIR/stance``): a flagged text stays flagged only when it states or refutes a
        narrative rather than reporting on its topic; ``None``: relevance alone decides. A narratives file
        with ``replace: true`` (another domain) is never gated."""
        self.directory: Path | None = None
        """The model directory it was loaded from (``None`` when assembled in code)."""
        if "debunk" not in roles.labels:
            raise ModelDirectoryError(f"the role model's labels {list(roles.labels)} have no 'debunk': pass a claim/debunk model")
        self.user = user
        """The few-shot head of narratives defined by examples (``load_model(narratives=...)``)."""
        self.standalone = standalone
        """Whether only the user's narratives are scored (a narratives file with ``replace: true``)."""
        labels, names = list(narratives.labels), dict(narratives.meta.label_names)
        thresholds = list(narratives.meta.decision_thresholds)
        if user is not None:
            labels, thresholds = ([], []) if standalone else (labels, thresholds)
            labels, thresholds = labels + user.labels, thresholds + list(user.thresholds)
            names.update(user.names)
        self._labels, self._names = labels, names
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        self._label_array = np.asarray(labels, dtype=object)

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
        if self.user is not None:
            digest.update(f"{self.standalone}:{self.user.digest()}".encode("ascii"))
        return digest.hexdigest()

    @property
    def names(self) -> dict[str, str]:
        """Narrative id → human-readable name, for every column of ``scores``."""
        return dict(self._names)

    @property
    def labels(self) -> list[str]:
        """Narrative ids, in score-column order (the user's narratives last)."""
        return list(self._labels)

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
        # Every role part reads the window alone, as its embedding holds it; debunk wording counts as in segment().
        debunk = debunk_probabilities(flat, self.roles, embeddings=embeddings, languages=window_languages, alone=True)
        relevance, matches = self._relevance(flat, windows, languages, embeddings, batch_size, show_progress_bar)
        if self.user is not None:
            probs, relevance = self._add_user(probs, relevance, embeddings, windows)
        counts = np.fromiter(map(len, windows), dtype=np.int64, count=len(windows))
        if relevance is not None and self.stance is not None and not self.standalone:
            relevance = self.stance.gate(flat, np.repeat(np.arange(len(windows)), counts), relevance,
                                         priority=probs.max(axis=1), batch_size=min(batch_size, 64),
                                         show_progress_bar=show_progress_bar)
        labels = self.labels
        lengths = np.fromiter((e - s for ws in windows for s, e in ws), dtype=np.float64, count=len(flat))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if self.text_role is not None:
            text_debunk = self.text_role.probability(debunk, lengths, debunk_cues(flat, window_languages), counts,
                                                     embeddings)
        else:
            text_debunk = weighted_mean(debunk, lengths, counts)
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
                    scores=dict(zip(names, values) if kept >= len(names) else zip(names[:kept], values[:kept])),
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
        encoder = encoder_for(spec) if embeddings is not None and spec is not None else None
        shared = encoder is not None and encoder.resolve_prefix(spec.prefix) == self.relevance.prefix and \
            encoder.fingerprint == self.relevance.index.meta.encoder_fingerprint
        owners = np.repeat(np.arange(len(windows)), [len(ws) for ws in windows])
        probabilities, matches = self.relevance.assess(flat, owners, languages, embeddings=embeddings if shared else None,
                                                       batch_size=batch_size, show_progress_bar=show_progress_bar)
        return (probabilities, self.relevance.model.flags(probabilities, languages)), matches


    def _add_user(self, probs: np.ndarray, relevance: tuple[np.ndarray, np.ndarray] | None, embeddings: np.ndarray | None,
                  windows: list[list[tuple[int, int]]]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The user's narratives' window probabilities added to ``probs`` (or instead of them), and
        relevance that counts them: a text flagged with one of them engages a known narrative."""
        if embeddings is None:
            raise ModelDirectoryError("narratives of your own are scored on the encoder's embeddings, and this model "
                                      "reads none: use the default model")
        extra = self.user.predict_proba(embeddings)
        starts = np.concatenate([[0], np.cumsum([len(ws) for ws in windows])[:-1]]).astype(np.int64)
        best = np.maximum.reduceat(extra, starts, axis=0)
        flagged = (best >= self.user.thresholds).any(axis=1)
        top = best.max(axis=1)
        if relevance is not None and not self.standalone:
            relevance = (np.maximum(relevance[0], top), relevance[1] | flagged)
        else:
            relevance = (top, flagged)
        return (extra if self.standalone else np.hstack([probs, extra])), relevance

    def with_narratives(self, narratives: NarrativeSource) -> "Model":
        """This model plus the narratives a file, taxonomy or list defines by examples (or only
        those, for a file with ``replace: true``): a new :class:`Model`; this one is unchanged."""
        spec = self._embedding_spec()
        if spec is None:
            raise ModelDirectoryError(f"{self.model_id} reads no embeddings, and narratives of your own are scored on "
                                      "them: use the default model (model=None)")
        encoder = encoder_for(spec)
        head, standalone, name = build_head(narratives, lambda texts: encoder.embed(texts, prefix=spec.prefix,
                                                                                    show_progress_bar=False),
                                            encoder.fingerprint)
        model = Model(self.narratives, self.roles, f"{self.model_id}+{name}", self.relevance, user=head,
                      standalone=standalone, text_role=self.text_role, stance=self.stance)
        model.directory = self.directory
        return model


@functools.lru_cache(maxsize=8)
def _with_file(base: Model, path: str, mtime_ns: int, size: int) -> Model:
    return base.with_narratives(path)


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str) -> Model:
    narratives = load_classifier(directory)
    role_dir = Path(directory, "role")
    own_roles = Path(role_dir, META_FILE).is_file()
    roles = load_classifier(role_dir if own_roles else ROLE_MODEL_DIR)
    model_id = narratives.meta.model_id or Path(directory).name
    model = Model(narratives, roles, model_id, relevance=load_relevance(directory),
                  text_role=load_text_role(role_dir) if own_roles else None, stance=load_stance(directory))
    model.directory = Path(directory)
    return model


@functools.lru_cache(maxsize=8)
def _without_stance(base: Model) -> Model:
    model = Model(base.narratives, base.roles, f"{base.model_id}+no-stance", base.relevance, text_role=base.text_role)
    model.directory = base.directory
    return model


def load_model(path: str | Path | None = None, narratives: NarrativeSource | bool | None = None,
               stance: bool = True) -> Model:
    """Load (once per process) a model directory, a shipped tier by name (``"default"``, the
    multilingual model, or ``"fast"``, the English TF-IDF model), or the default when ``path`` is None.

    The role model comes from ``DIR/role`` when the directory has one, else the shipped one; the
    relevance model (with the shipped case index) from ``DIR/relevance`` when there is one.

    ``narratives`` adds narratives defined by a few examples (see "Narratives of your own" in the
    README): a YAML file, a :class:`~disinfo_clf.taxonomy.Taxonomy` or a list of
    :class:`~disinfo_clf.taxonomy.Narrative`; ``None`` (the default) adds the shipped war
    narratives (``resources/narratives/war-2022.yaml``) to a model that reads embeddings, and
    ``False`` adds none.

    ``stance=False`` leaves out the stance gate (``DIR/stance``), so that relevance alone decides which
    texts are flagged: more claims found outside English, and much more on-topic reporting flagged
    (see "How well it works" in the README).
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
    base = _load_cached(str(directory.resolve()))
    if not stance and base.stance is not None:
        base = _without_stance(base)
    if narratives is False or (narratives is None and base._embedding_spec() is None):
        return base
    if narratives is None or narratives is True:
        narratives = WAR_NARRATIVES
    if isinstance(narratives, (str, os.PathLike)):
        file = Path(narratives).resolve()
        if not file.is_file():
            raise FileNotFoundError(f"narratives file {str(narratives)!r} does not exist")
        stat = file.stat()
        return _with_file(base, str(file), stat.st_mtime_ns, stat.st_size)
    return base.with_narratives(narratives)


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
