"""The fast backend: TF-IDF word and character n-grams with one-vs-rest logistic regression.

Needs no pretrained weights. A model directory holds ``config.json`` (labels, problem type,
vectoriser settings), ``disinfo_clf.json`` (:class:`ModelMeta`), ``vocabulary.json`` (the
n-grams of each analyzer as a list in column order) and ``linear.safetensors`` (idf vectors,
``coef`` of shape labels x features, ``intercept``); nothing is pickled. Weights are rounded to
float16 precision when fitted and saved as float16, which halves the directory at no measured cost.

Logits are ``X @ coef.T + intercept`` for every problem type. Multi-label: one binary logistic
regression per label. Single-label with two classes: one binary regression with decision ``z``,
stored as the two columns ``[-z/2, z/2]`` so that softmax gives ``[1 - sigmoid(z), sigmoid(z)]``
and the logit difference is ``z``. Single-label with more classes: one multinomial regression.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from .meta import CONFIG_FILE, META_FILE, MULTI_LABEL, SINGLE_LABEL, ModelDirectoryError, ModelMeta, ProblemType, progress_disabled, require_files, write_hf_config
from .calibration import CalibratedClassifier
from .features import ANALYZERS, CueFeatures, fast_transform, make_vectorizer, terms_in_order, vectorizer_settings
from .folder_checks import check_cues, check_finite, check_vectorizer_settings
from ..config import LinearConfig, to_dict

logger = logging.getLogger(__name__)

MODEL_TYPE = "disinfo-linear"
VOCABULARY_FILE = "vocabulary.json"
CUES_FILE = "cues.json"
WEIGHTS_FILE = "linear.safetensors"
ABSENT_LOGIT = 20.0
"""Magnitude of the constant logit given to a label that training never (or always) showed."""
_CONFIG_KEYS = {"model_type", "num_features", "vectorizers", "linear_config", "id2label", "label2id", "problem_type"}
_CHUNK = 4096
REPAIR = "retrain the model, or copy the directory again from where it came from"
"""Texts vectorised per step: small batches only add per-call overhead to a sparse model."""



def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    if set(map(type, texts)) <= {str}:  # the common case, checked in C
        return texts
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a string; pass texts as str (use '' for none)")
    return texts


class LinearClassifier(CalibratedClassifier):
    """TF-IDF + logistic regression text classifier answering the ``TextClassifier`` protocol.

    Build one with :meth:`fit` (a classmethod that returns a fitted model) or
    :meth:`from_pretrained`; the constructor takes already-fitted parts.
    """

    def __init__(self, meta: ModelMeta, vectorizers: dict[str, TfidfVectorizer], coef: np.ndarray,
                 intercept: np.ndarray, settings: dict[str, dict[str, Any]],
                 linear_config: dict[str, Any] | None = None, cue_features: CueFeatures | None = None,
                 idf: dict[str, np.ndarray] | None = None) -> None:
        self.meta = meta
        self.vectorizers = vectorizers
        """Per analyzer, a ``TfidfVectorizer`` holding its settings (fitted only when fitted here)."""
        self.vocabularies: dict[str, dict[str, int]] = {
            name: v.vocabulary if idf is not None else v.vocabulary_ for name, v in vectorizers.items()}
        """Per analyzer, n-gram → column."""
        self.idf: dict[str, np.ndarray] = idf if idf is not None else {name: v.idf_ for name, v in vectorizers.items()}
        """Per analyzer, the inverse document frequency of each column (state we own: a loaded model
        has no fitted scikit-learn vectoriser)."""
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.settings = settings
        """TfidfVectorizer arguments per analyzer (``word``, ``char``), as written to ``config.json``."""
        self.linear_config = linear_config or {}
        """The :class:`LinearConfig` the model was fitted with, as plain data (for the record)."""
        # Stored transposed and C-ordered: sparse @ dense then needs no copy of the weights.
        self._coef_t = np.ascontiguousarray(np.asarray(coef, dtype=np.float32).T)
        self.cue_features = cue_features
        """Taxonomy cue flags appended to the n-grams (``None``: n-grams only)."""
        sizes = [len(self.vocabularies[name]) for name in ANALYZERS]
        if cue_features is not None:
            sizes.append(len(cue_features.matcher.labels))
        self._blocks = np.split(self._coef_t, np.cumsum(sizes)[:-1])
        """Per analyzer, its rows of ``coef.T``; summing block products avoids stacking matrices."""
        self._transforms: dict[str, Any] = {
            name: fast_transform(vectorizers[name], self.vocabularies[name], self.idf[name]) for name in ANALYZERS}
        if cue_features is not None:
            self._transforms["cue"] = cue_features

    @property
    def labels(self) -> list[str]:
        """Label ids, in the column order of :meth:`predict_proba`."""
        return list(self.meta.labels)

    @property
    def coef(self) -> np.ndarray:
        """Weights, shape ``(len(labels), num_features)`` (a read-only view)."""
        view = self._coef_t.T
        view.flags.writeable = False
        return view

    @property
    def num_features(self) -> int:
        """Word plus character n-grams in the vocabulary."""
        return int(self._coef_t.shape[0])

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: np.ndarray,
        *,
        labels: Sequence[str],
        problem_type: ProblemType,
        config: LinearConfig,
        seed: int,
        label_names: dict[str, str] | None = None,
        task: str = "narrative",
        show_progress_bar: bool | None = None,
        cues: dict[str, list[str]] | None = None,
    ) -> "LinearClassifier":
        """Fit the vectorisers and the logistic regressions; returns the fitted model.

        ``targets``: a 0/1 matrix ``(len(texts), len(labels))`` for multi-label, a vector of
        class indices for single-label. ``cues`` (label id → cue phrases) adds one cue-flag
        feature per label, weighted by ``config.cue_weight``. Calibration and thresholds stay at their defaults:
        the training loop fits them on validation and sets ``meta``.
        """
        texts = _check_texts(texts)
        labels = list(labels)
        y = _check_targets(targets, len(texts), labels, problem_type)
        started = time.perf_counter()
        settings = vectorizer_settings(config)
        vectorizers: dict[str, TfidfVectorizer] = {}
        blocks = []
        for name in ANALYZERS:
            vectorizer = make_vectorizer(settings[name], min_df=config.min_df, max_features=config.max_features)
            try:
                blocks.append(vectorizer.fit_transform(texts))
            except ValueError as exc:
                raise ValueError(
                    f"the {name} vectoriser kept no n-gram from {len(texts)} texts ({exc}); "
                    "train on more texts or lower linear.min_df"
                ) from exc
            vectorizers[name] = vectorizer
        cue_features = CueFeatures(cues, config.cue_weight) if cues and config.cue_weight > 0 else None
        if cue_features is not None:
            blocks.append(cue_features(texts))
        features = sparse.hstack(blocks, format="csr")
        logger.info("linear model: %d texts, %d features (%s)", len(texts), features.shape[1],
                    ", ".join(f"{n} {b.shape[1]}" for n, b in zip((*ANALYZERS, "cue"), blocks)))
        coef, intercept = fit_logistic_heads(features, y, labels=labels, problem_type=problem_type, C=config.C,
                                             class_weight=config.class_weight, max_iter=config.max_iter, seed=seed,
                                             show_progress_bar=show_progress_bar)
        logger.info("linear model fitted in %.1f s", time.perf_counter() - started)
        coef = _round_to_half(coef)
        meta = ModelMeta(
            backend="linear",
            task=task,  # type: ignore[arg-type]
            labels=labels,
            problem_type=problem_type,
            label_names=dict(label_names or {}),
        )
        return cls(meta, vectorizers, coef, intercept, settings, to_dict(config), cue_features)

    def decision_function(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Raw, uncalibrated logits, shape ``(len(texts), len(labels))``.

        ``batch_size`` is accepted for the protocol; texts are vectorised in chunks of at least
        1,024, since the linear model gains nothing from small batches.
        """
        texts = _check_texts(texts)
        out = np.empty((len(texts), len(self.meta.labels)), dtype=np.float32)
        chunk = max(batch_size, _CHUNK)
        disable = True if len(texts) <= chunk and not show_progress_bar else progress_disabled(show_progress_bar)
        with tqdm(total=len(texts), desc="linear", unit="text", disable=disable) as bar:
            for start in range(0, len(texts), chunk):
                part = texts[start:start + chunk]
                logits = np.broadcast_to(self.intercept, (len(part), len(self.intercept))).copy()
                for name, block in zip(self._transforms, self._blocks):
                    logits += self._transforms[name](part) @ block
                out[start:start + len(part)] = logits
                bar.update(len(part))
        return out

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json``, ``disinfo_clf.json``, ``vocabulary.json`` and ``linear.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        extra = {"model_type": MODEL_TYPE, "num_features": self.num_features, "vectorizers": self.settings,
                 "linear_config": self.linear_config}
        write_hf_config(directory, self.meta, extra)
        self.meta.save(directory)
        if self.cue_features is not None:
            Path(directory, CUES_FILE).write_text(json.dumps(self.cue_features.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        vocabulary = {name: terms_in_order(self.vocabularies[name]) for name in ANALYZERS}
        Path(directory, VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        tensors = {f"{name}_idf": np.ascontiguousarray(self.idf[name]) for name in ANALYZERS}
        coef = np.ascontiguousarray(self.coef)
        tensors["coef"] = coef.astype(np.float16) if np.array_equal(_round_to_half(coef), coef) else coef
        tensors["intercept"] = self.intercept
        save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "np", "model_type": MODEL_TYPE})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "LinearClassifier":
        """Load a directory written by :meth:`save_pretrained`; a missing or corrupt file raises
        :class:`ModelDirectoryError` naming it."""
        directory = Path(directory)
        meta = ModelMeta.load(directory)
        require_files(directory, [CONFIG_FILE, VOCABULARY_FILE, WEIGHTS_FILE])
        config = _read_json(directory / CONFIG_FILE)
        if not isinstance(config, dict):
            config = {}
        settings = config.get("vectorizers")
        if config.get("model_type") != MODEL_TYPE or not isinstance(settings, dict) or not set(ANALYZERS) <= set(settings):
            raise ModelDirectoryError(
                f"{directory / CONFIG_FILE} is not a linear model config (needs model_type {MODEL_TYPE!r} and vectorizers)"
            )
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ModelDirectoryError(f"{directory / CONFIG_FILE}: {unknown[0]!r} is not a setting of a linear model "
                                      f"config (allowed: {', '.join(sorted(_CONFIG_KEYS))})")
        check_vectorizer_settings(settings, directory / CONFIG_FILE)
        if config.get("id2label") != {str(i): label for i, label in enumerate(meta.labels)}:
            raise ModelDirectoryError(f"{directory / CONFIG_FILE}: id2label does not match the labels in {META_FILE}")
        vocabulary = _read_json(directory / VOCABULARY_FILE)
        if not isinstance(vocabulary, dict) or not all(isinstance(vocabulary.get(n), list) for n in ANALYZERS):
            raise ModelDirectoryError(f"{directory / VOCABULARY_FILE} is corrupt: expected lists of n-grams {ANALYZERS}")
        weights_path = directory / WEIGHTS_FILE
        try:
            tensors = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelDirectoryError(f"{weights_path} is corrupt: {exc}; {REPAIR}") from exc
        vectorizers, idfs = {}, {}
        for name in ANALYZERS:
            terms, idf = vocabulary[name], tensors.get(f"{name}_idf")
            if idf is None or idf.shape != (len(terms),):
                raise ModelDirectoryError(
                    f"{weights_path}: {name}_idf does not match the {len(terms)} {name} n-grams in {VOCABULARY_FILE}"
                )
            try:
                # A vectoriser built on the vocabulary, not fitted: the settings; our idf does the weighting.
                vectorizer = make_vectorizer(settings[name], vocabulary={term: i for i, term in enumerate(terms)})
                if not terms or len(vectorizer.vocabulary) != len(terms):
                    raise ValueError(f"the {name} n-grams in {VOCABULARY_FILE} are empty or repeat one another")
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelDirectoryError(
                    f"{directory / VOCABULARY_FILE} or {directory / CONFIG_FILE} is corrupt: {exc}; {REPAIR}"
                ) from exc
            vectorizers[name], idfs[name] = vectorizer, idf
        cue_features = _load_cues(directory / CUES_FILE, meta.labels) if (directory / CUES_FILE).is_file() else None
        n_features = sum(len(vocabulary[n]) for n in ANALYZERS) + (len(cue_features.matcher.labels) if cue_features else 0)
        coef, intercept = tensors.get("coef"), tensors.get("intercept")
        shapes = None if coef is None or intercept is None else (coef.shape, intercept.shape)
        if shapes != ((len(meta.labels), n_features), (len(meta.labels),)):
            raise ModelDirectoryError(
                f"{weights_path}: coef/intercept do not match {len(meta.labels)} labels x {n_features} n-grams"
            )
        for key, values in (("coef", coef), ("intercept", intercept), *((f"{n}_idf", tensors[f"{n}_idf"]) for n in ANALYZERS)):
            check_finite(values, weights_path, key)
        return cls(meta, vectorizers, coef, intercept, {n: settings[n] for n in ANALYZERS}, config.get("linear_config"),
                   cue_features, idf=idfs)


def fit_logistic_heads(
    features: Any, targets: np.ndarray, *, labels: list[str], problem_type: ProblemType, C: float,
    class_weight: str, max_iter: int, seed: int, show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``coef`` (labels x features) and ``intercept`` of logistic regressions on any feature matrix
    (sparse n-grams or dense embeddings), with this module's column conventions."""
    y = _check_targets(targets, features.shape[0], labels, problem_type)
    regression = dict(C=C, class_weight=None if class_weight == "none" else "balanced", max_iter=max_iter,
                      random_state=seed)
    if problem_type == MULTI_LABEL:
        return _fit_one_vs_rest(features, y, labels, regression, show_progress_bar)
    return _fit_single_label(features, y, labels, regression)


def _check_targets(targets: np.ndarray, n_texts: int, labels: list[str], problem_type: str) -> np.ndarray:
    """Targets as an int array of the right shape, or a ValueError saying what is wrong."""
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError(f"labels must be a non-empty list of distinct ids, got {labels}")
    y = np.asarray(targets)
    if problem_type == MULTI_LABEL:
        if y.shape != (n_texts, len(labels)):
            raise ValueError(f"multi-label targets must be a 0/1 matrix of shape ({n_texts}, {len(labels)}), got {y.shape}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("multi-label targets must hold only 0 and 1")
        return y.astype(np.int8)
    if problem_type == SINGLE_LABEL:
        if len(labels) < 2:
            raise ValueError(f"single-label classification needs at least 2 labels, got {labels}")
        if y.shape != (n_texts,):
            raise ValueError(f"single-label targets must be a vector of {n_texts} class indices, got shape {y.shape}")
        if n_texts and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= len(labels)):
            raise ValueError(f"single-label targets must be integers in [0, {len(labels)})")
        return y.astype(np.int64)
    raise ValueError(f"problem_type must be {MULTI_LABEL!r} or {SINGLE_LABEL!r}, got {problem_type!r}")


def _fit_one_vs_rest(
    features: sparse.csr_matrix, y: np.ndarray, labels: list[str], regression: dict[str, Any], show_progress_bar: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """One binary logistic regression per label; a constant logit for a label seen never or always."""
    coef = np.zeros((len(labels), features.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(labels), dtype=np.float32)
    for j in tqdm(range(len(labels)), desc="fitting labels", unit="label", disable=progress_disabled(show_progress_bar)):
        n_pos = int(y[:, j].sum())
        if n_pos in (0, len(y)):
            logger.warning("label %r is %s in the training texts; it gets a constant %s score",
                           labels[j], "never positive" if n_pos == 0 else "positive", "low" if n_pos == 0 else "high")
            intercept[j] = -ABSENT_LOGIT if n_pos == 0 else ABSENT_LOGIT
            continue
        model = LogisticRegression(**regression).fit(features, y[:, j])
        coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
    return coef, intercept


def _fit_single_label(
    features: sparse.csr_matrix, y: np.ndarray, labels: list[str], regression: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """A binary (stored as ``[-z/2, z/2]``) or multinomial regression; absent classes score very low."""
    present = np.unique(y)
    coef = np.zeros((len(labels), features.shape[1]), dtype=np.float32)
    intercept = np.full(len(labels), -ABSENT_LOGIT, dtype=np.float32)
    missing = [labels[k] for k in range(len(labels)) if k not in present]
    if missing:
        logger.warning("classes %s never occur in the training texts; they get a constant low score", missing)
    if len(present) == 1:
        intercept[present[0]] = 0.0
        return coef, intercept
    model = LogisticRegression(**regression).fit(features, y)
    if len(present) == 2:
        low, high = present
        z_coef, z_intercept = model.coef_[0] / 2, model.intercept_[0] / 2
        coef[low], coef[high] = -z_coef, z_coef
        intercept[low], intercept[high] = -z_intercept, z_intercept
    else:
        coef[present], intercept[present] = model.coef_, model.intercept_
    return coef, intercept


def _round_to_half(coef: np.ndarray) -> np.ndarray:
    """Weights rounded to float16 precision (kept float32), so that they are saved at half the size.

    Measured on the database titles: identical macro-F1, probabilities within 2e-4."""
    if not np.all(np.abs(coef) < np.finfo(np.float16).max):
        return coef
    return coef.astype(np.float16).astype(np.float32)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # includes JSON and UTF-8 decoding errors
        raise ModelDirectoryError(f"{path} is corrupt: {exc}; {REPAIR}") from exc


def _load_cues(path: Path, labels: Sequence[str]) -> CueFeatures:
    cues, weight = check_cues(_read_json(path), labels, path)
    try:
        return CueFeatures(cues, weight)
    except ValueError as exc:  # a cue RE2 cannot match (lookaround, backreference...), named with its label
        raise ModelDirectoryError(f"{path}: {exc}") from exc
