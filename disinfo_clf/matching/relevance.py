"""Does a text engage a known narrative at all (state it or debunk it)? A calibrated yes/no.

The narrative classifier always names a top narrative; this model says whether that answer is
worth reading. Each sentence window of a text is scored by a logistic regression on

- how close the window comes to the catalogued cases of a :class:`~disinfo_clf.index.CaseIndex`
  (multilingual e5 cosine similarities ``s1 >= s2 >= ...``): ``top1`` = ``s1``, ``top5`` = the
  mean of ``s1..s5``, ``spread`` = ``s1 - s10``, ``over_centroid`` = ``top5`` minus the
  similarity to the mean case embedding;
- its length, ``log_words`` = ``log(1 + words)`` capped at 64 words (a bare place name is no claim);
- how close it comes to ordinary real text on the same topics (format 2, optional):
  :data:`~disinfo_clf.matching.ordinary_bank.ORDINARY_FEATURES`, read from a bank of ordinary windows;
- a probe: a logistic regression on the window's embedding itself (claims and debunks vs
  ordinary text), whose out-of-fold logit the regression weighs with the rest.

A text's score is its best window's; Platt scaling per language group (English, other: the
cases are English, so English text sits closer to them) turns it into a probability, and a
threshold per group, tuned on development data, flags it.

A model directory holds ``relevance.json`` (weights, calibration, thresholds, the encoder
fingerprint it was fitted with), ``ordinary.safetensors`` when it reads the ordinary bank, and
``metrics.json``; no pickles.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..resources import DEFAULT_MODEL_DIR
from ..text.language import GROUPS, language_group
from .index import load_index
from .vectors import similarities as vector_similarities
from .index import encoder_for
from .ordinary_bank import ORDINARY_FEATURES, OrdinaryBankError, load_bank, ordinary_features, save_bank

if TYPE_CHECKING:
    from ..encoders.base import Encoder
    from .index import CaseIndex, CaseMatch

logger = logging.getLogger(__name__)

RELEVANCE_DIR = DEFAULT_MODEL_DIR / "relevance"
"""The default model's relevance part (fitted on e5 similarities to the shipped case index)."""
MODEL_FILE = "relevance.json"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 2
"""Version 2 may add the ordinary-bank features; version 1 files (case features only) are still read."""
FEATURES = ("top1", "top5", "spread", "over_centroid", "log_words")
"""Similarity and length features of a window; the ordinary-bank ones (if any), then the probe's logit, come after."""
NEIGHBOURS = 10
"""Similarities per window the features read."""
MAX_WORDS = 64
_WORD = re.compile(r"[^\W\d_]+|\d+")
_IDEOGRAPH = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


class RelevanceModelError(ValueError):
    """A relevance model directory that cannot be used; names the file."""


def word_count(text: str) -> float:
    """Words of ``text``, CJK characters counting as half a word each (their scripts use no spaces)."""
    ideographs = len(_IDEOGRAPH.findall(text))
    return len(_WORD.findall(_IDEOGRAPH.sub(" ", text))) + ideographs / 2


def window_features(similarities: np.ndarray, centroid_similarity: np.ndarray, words: Sequence[float]) -> np.ndarray:
    """The :data:`FEATURES` of windows, from their sorted top similarities (n x >= 10), their
    similarity to the index centroid (n) and their word counts (n)."""
    s = np.asarray(similarities, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < NEIGHBOURS:
        raise ValueError(f"need the {NEIGHBOURS} best similarities of each window, got shape {s.shape}")
    top5 = s[:, :5].mean(axis=1)
    log_words = np.log1p(np.minimum(np.asarray(words, dtype=np.float64), MAX_WORDS))
    return np.column_stack([s[:, 0], top5, s[:, 0] - s[:, NEIGHBOURS - 1],
                            top5 - np.asarray(centroid_similarity, dtype=np.float64), log_words])


def index_features(index: CaseIndex, embeddings: np.ndarray, texts: Sequence[str],
                   similarities: np.ndarray | None = None) -> np.ndarray:
    """Window features of ``texts`` (windows) from their ``embeddings`` and ``index``; pass
    ``similarities`` (sorted, n x >= 10) when the neighbours are already known."""
    if similarities is None:
        similarities, _ = index.neighbours(embeddings, NEIGHBOURS)
    centroid = vector_similarities(embeddings, index.centroid[None, :])[:, 0]
    return window_features(similarities, centroid, [word_count(t) for t in texts])




@dataclass
class RelevanceModel:
    """Window regression on similarity features plus an embedding probe, best window per text,
    Platt-calibrated per language group; see the module docstring."""

    probe_coef: list[float]
    """Logistic-regression weights on the window embedding (claim-like vs ordinary text)."""
    probe_intercept: float
    coef: list[float]
    """Weights of the standardised :data:`FEATURES` and the probe's logit (last)."""
    intercept: float
    mean: list[float]
    scale: list[float]
    calibration: dict[str, list[float]] = field(default_factory=lambda: {g: [1.0, 0.0] for g in GROUPS})
    """Group → ``(a, b)``: the probability is ``sigmoid(a * best_window_logit + b)``."""
    threshold: dict[str, float] = field(default_factory=lambda: {g: 0.5 for g in GROUPS})
    """Group → the probability from which a text counts as engaging a known narrative."""
    features: tuple[str, ...] = FEATURES
    encoder_fingerprint: str = ""
    """sha256 of the encoder weights the similarities were computed with."""
    info: dict[str, Any] = field(default_factory=dict)
    """How it was fitted: data sizes, index, dates (for people; not read back)."""
    ordinary: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The ordinary bank (m x dim) when :attr:`features` holds the ordinary-bank features."""

    @property
    def reads_ordinary(self) -> bool:
        """Whether the model weighs the ordinary-bank features."""
        return tuple(self.features) == FEATURES + ORDINARY_FEATURES

    def window_logits(self, features: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated logit of each window, from its :data:`FEATURES` (the ordinary-bank ones are
        computed from the embedding when not given) and its embedding."""
        features = np.asarray(features, dtype=np.float64)
        if self.reads_ordinary and features.shape[1] == len(FEATURES):
            if self.ordinary is None:
                raise RelevanceModelError("this relevance model reads ordinary-bank features but holds no bank")
            features = np.column_stack([features, ordinary_features(features[:, 0], embeddings, self.ordinary)])
        probe = np.asarray(embeddings, dtype=np.float64) @ np.asarray(self.probe_coef) + self.probe_intercept
        x = np.column_stack([np.asarray(features, dtype=np.float64), probe])
        return ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept

    def text_logits(self, features: np.ndarray, embeddings: np.ndarray, owners: Sequence[int] | np.ndarray,
                    n_texts: int) -> np.ndarray:
        """Each text's best window logit (``owners[i]`` is the text of window ``i``)."""
        out = np.full(n_texts, -np.inf)
        np.maximum.at(out, np.asarray(owners, dtype=np.int64), self.window_logits(features, embeddings))
        return out

    def calibrated(self, text_logits: np.ndarray, languages: Sequence[str | None]) -> np.ndarray:
        """Probabilities of text logits, each through its language group's calibration."""
        ab = np.array([self.calibration[language_group(lang)] for lang in languages], dtype=np.float64).reshape(-1, 2)
        z = ab[:, 0] * np.asarray(text_logits, dtype=np.float64) + ab[:, 1]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def probabilities(self, features: np.ndarray, embeddings: np.ndarray, owners: Sequence[int] | np.ndarray,
                      languages: Sequence[str | None]) -> np.ndarray:
        """Calibrated probability, per text, that it engages a known narrative."""
        return self.calibrated(self.text_logits(features, embeddings, owners, len(languages)), languages)

    def threshold_for(self, language: str | None) -> float:
        """The tuned threshold of a text in ``language``."""
        return float(self.threshold[language_group(language)])

    def flags(self, probabilities: np.ndarray, languages: Sequence[str | None]) -> np.ndarray:
        """True where a text's probability reaches its group's threshold."""
        return np.asarray(probabilities) >= np.array([self.threshold_for(lang) for lang in languages])

    @classmethod
    def fit(cls, features: np.ndarray, embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
            *, probe_C: float = 0.5, C: float = 1.0, seed: int = 0, ordinary: np.ndarray | None = None) -> RelevanceModel:
        """Fit the probe and the window regression on windows (features, embeddings, 0/1 labels,
        sample weights); the regression sees the probe's out-of-fold logits, as it will see
        logits of unseen text. With an ``ordinary`` bank, ``features`` also hold the
        ordinary-bank columns. Calibration and thresholds are left for :meth:`calibrate`."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = np.asarray(labels, dtype=int)
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
        emb = np.asarray(embeddings, dtype=np.float64)
        probe = LogisticRegression(C=probe_C, max_iter=3000).fit(emb, y, sample_weight=w)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        oof = cross_val_predict(LogisticRegression(C=probe_C, max_iter=3000), emb, y, cv=folds,
                                method="decision_function", params={"sample_weight": w})
        x = np.column_stack([np.asarray(features, dtype=np.float64), oof])
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        clf = LogisticRegression(C=C, max_iter=2000).fit((x - mean) / scale, y, sample_weight=w)
        return cls(probe_coef=probe.coef_[0].tolist(), probe_intercept=float(probe.intercept_[0]),
                   coef=clf.coef_[0].tolist(), intercept=float(clf.intercept_[0]), mean=mean.tolist(),
                   scale=scale.tolist(), features=FEATURES + (ORDINARY_FEATURES if ordinary is not None else ()),
                   ordinary=ordinary)

    def calibrate(self, text_logits: np.ndarray, labels: np.ndarray, languages: Sequence[str | None],
                  *, max_false_positive_rate: float | dict[str, float] = 0.05) -> None:
        """Per language group, fit the Platt scaling on development texts (classes weighted
        equally) and tune the threshold: the most recall whose false-positive rate stays within
        ``max_false_positive_rate`` (one bound, or group → bound)."""
        from sklearn.linear_model import LogisticRegression

        z, y = np.asarray(text_logits, dtype=np.float64), np.asarray(labels, dtype=int)
        groups = np.array([language_group(lang) for lang in languages])
        for group in GROUPS:
            m = groups == group
            if len(set(y[m])) < 2:
                raise ValueError(f"calibrating group {group!r} needs both classes among the development texts")
            counts = np.bincount(y[m], minlength=2)
            w = np.where(y[m] == 1, 0.5 / counts[1], 0.5 / counts[0]) * m.sum()
            platt = LogisticRegression(C=1e6, max_iter=1000).fit(z[m, None], y[m], sample_weight=w)
            self.calibration[group] = [float(platt.coef_[0, 0]), float(platt.intercept_[0])]
            p = self.calibrated(z[m], [group] * int(m.sum()))
            bound = max_false_positive_rate[group] if isinstance(max_false_positive_rate, dict) else max_false_positive_rate
            self.threshold[group] = tune_threshold(p, y[m], bound)

    def save(self, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """Write ``relevance.json`` (and ``metrics.json`` when given) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = {"format_version": FORMAT_VERSION, **asdict(self)}
        data["features"] = list(self.features)
        del data["ordinary"]
        if self.reads_ordinary:
            if self.ordinary is None:
                raise ValueError("a model reading ordinary-bank features needs its bank to be saved")
            save_bank(self.ordinary, directory)
        (directory / MODEL_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        if metrics is not None:
            (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path | None = None) -> RelevanceModel:
        """Read a relevance model directory (default: the shipped one)."""
        path = Path(directory if directory is not None else RELEVANCE_DIR, MODEL_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.pop("format_version", None) not in (1, FORMAT_VERSION):
                raise ValueError(f"not format version 1 or {FORMAT_VERSION}")
            model = cls(**{**data, "features": tuple(data["features"])})
            numbers = [*model.probe_coef, model.probe_intercept, *model.coef, model.intercept, *model.mean,
                       *model.scale, *(v for ab in model.calibration.values() for v in ab), *model.threshold.values()]
        except FileNotFoundError as exc:
            raise RelevanceModelError(f"{path} is missing: not a relevance model directory") from exc
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RelevanceModelError(f"{path} is not a relevance model this library reads ({exc})") from exc
        if model.features not in (FEATURES, FEATURES + ORDINARY_FEATURES) or \
                not len(model.coef) == len(model.mean) == len(model.scale) == len(model.features) + 1:
            raise RelevanceModelError(f"{path}: features {list(model.features)} (and their weights) are not this "
                                      f"library's {list(FEATURES)}, optionally followed by {list(ORDINARY_FEATURES)}")
        if set(model.calibration) != set(GROUPS) or set(model.threshold) != set(GROUPS):
            raise RelevanceModelError(f"{path}: calibration and threshold need the groups {list(GROUPS)}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
            raise RelevanceModelError(f"{path}: weights must be finite numbers")
        if model.reads_ordinary:
            try:
                model.ordinary = load_bank(path.parent, len(model.probe_coef))
            except OrdinaryBankError as exc:
                raise RelevanceModelError(str(exc)) from exc
        return model


def tune_threshold(probabilities: np.ndarray, labels: np.ndarray, max_false_positive_rate: float) -> float:
    """The lowest threshold (most recall) whose false-positive rate on ``labels == 0`` is at most the bound."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(labels, dtype=int)
    negatives = np.sort(p[y == 0])[::-1]
    if len(negatives) == 0:
        return 0.5
    allowed = int(math.floor(max_false_positive_rate * len(negatives)))
    # Strictly above the (allowed+1)-th highest negative: at most `allowed` negatives reach it.
    bound = negatives[allowed] if allowed < len(negatives) else 0.0
    candidates = p[(p > bound)]
    return float(candidates.min()) if len(candidates) else float(np.nextafter(bound, 1.0))


def flag_metrics(flags: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
    """Precision, recall and flag rates of a yes/no flag against 0/1 labels."""
    f, y = np.asarray(flags, dtype=bool), np.asarray(labels, dtype=int)
    tp, fp = int((f & (y == 1)).sum()), int((f & (y == 0)).sum())
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    return {"n": len(y), "positives": pos, "negatives": neg,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / pos if pos else float("nan"),
            "flagged_positive": tp / pos if pos else float("nan"),
            "flagged_negative": fp / neg if neg else float("nan")}


def assess(model: RelevanceModel, index: CaseIndex, embeddings: np.ndarray, window_texts: Sequence[str],
           owners: Sequence[int] | np.ndarray, languages: Sequence[str | None],
           k: int = 3) -> tuple[np.ndarray, list[list[CaseMatch]]]:
    """Relevance probability and the ``k`` closest cases of each text, from its windows' embeddings
    (one nearest-neighbour search serves both)."""
    fetch = max(NEIGHBOURS, index.fetch_size(k))
    sims, positions = index.neighbours(embeddings, fetch)
    if sims.shape[1] < NEIGHBOURS:  # an index of fewer cases than the features read
        sims = np.pad(sims, ((0, 0), (0, NEIGHBOURS - sims.shape[1])), mode="edge")
    features = index_features(index, embeddings, window_texts, similarities=sims[:, :NEIGHBOURS])
    probabilities = model.probabilities(features, embeddings, owners, languages)
    return probabilities, index.search(embeddings, k, owners, neighbours=(sims, positions))


class Relevance:
    """A relevance model with the case index and encoder it reads: what a prediction model needs
    to say whether a text engages a known narrative, and which known cases it is closest to."""

    def __init__(self, model: RelevanceModel, index: CaseIndex, encoder: Encoder | None = None) -> None:
        if model.encoder_fingerprint and index.meta.encoder_fingerprint and \
                model.encoder_fingerprint != index.meta.encoder_fingerprint:
            raise RelevanceModelError(
                f"the relevance model was fitted with encoder weights {model.encoder_fingerprint[:12]}…, but the case "
                f"index holds embeddings of {index.meta.encoder_fingerprint[:12]}…: refit it (scripts/train_relevance.py)")
        self.model = model
        self.index = index
        self._encoder = encoder

    @classmethod
    def load(cls, directory: str | Path | None = None, index: str | Path | CaseIndex | None = None) -> Relevance:
        """The relevance model in ``directory`` (default: the shipped one) on ``index`` (default: the shipped one)."""

        return cls(RelevanceModel.load(directory), load_index(index))

    @property
    def encoder_name(self) -> str:
        """The encoder the index was built with (Hub id or directory)."""
        return self.index.meta.encoder

    @property
    def prefix(self) -> str:
        """The prefix the index's texts were embedded with."""
        return self.index.meta.prefix

    def encoder(self) -> Encoder:
        """The encoder given at construction, else the process's shared one the index names (looked up
        on every call, so a swapped encoder reaches relevance too), checked against the index."""
        return encoder_for(self.index, self._encoder)

    def assess(self, window_texts: Sequence[str], owners: Sequence[int] | np.ndarray, languages: Sequence[str | None],
               *, embeddings: np.ndarray | None = None, k: int = 3, batch_size: int = 64,
               show_progress_bar: bool | None = None) -> tuple[np.ndarray, list[list[CaseMatch]]]:
        """Relevance probability and ``k`` closest cases of each text, from its windows (and their
        embeddings by the index's encoder, when already computed)."""
        if embeddings is None:
            embeddings = self.encoder().embed(list(window_texts), prefix=self.prefix, batch_size=batch_size,
                                              show_progress_bar=show_progress_bar)
        return assess(self.model, self.index, embeddings, window_texts, owners, languages, k=k)


def load_relevance(model_directory: str | Path) -> Relevance | None:
    """The relevance part of a prediction model directory: ``DIR/relevance/`` when it holds a
    relevance model (on the shipped case index), else ``None``."""
    directory = Path(model_directory, "relevance")
    return Relevance.load(directory) if Path(directory, MODEL_FILE).is_file() else None
