"""Probability calibration, decision thresholds and calibration diagnostics, for every backend.

Calibration parameters are plain JSON-ready dicts stored in ``ModelMeta.calibration``:

- ``{"method": "none"}``: sigmoid (multi-label) or softmax (single-label) of the raw logits;
- ``{"method": "temperature", "temperature": T}``: the same of ``logits / T``;
- ``{"method": "platt", "a": [...], "b": [...]}``: multi-label, ``sigmoid(a[j] * logit[:, j] + b[j])``
  per label; single-label with two classes, one pair ``a[0], b[0]`` applied to the logit
  difference ``d = logit[:, 1] - logit[:, 0]``: ``p1 = sigmoid(a * d + b)``, ``p0 = 1 - p1``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from .meta import MULTI_LABEL, SINGLE_LABEL, ModelMeta, ProblemType

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["temperature", "platt", "none"]
THRESHOLD_MIN = 0.05
THRESHOLD_MAX = 0.95
DEFAULT_GRID: tuple[float, ...] = tuple(round(t, 2) for t in np.arange(THRESHOLD_MIN, THRESHOLD_MAX + 1e-9, 0.01))
_LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_A_BOUNDS = (1e-3, 100.0)
_B_BOUNDS = (-50.0, 50.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, without overflow warnings."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Elementwise log-odds of probabilities, clipped to ``[eps, 1 - eps]`` first (finite at 0 and 1)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a 2-D array."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    ex = np.exp(shifted)
    return ex / ex.sum(axis=1, keepdims=True)


def _binary_nll(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 (or soft) targets under ``sigmoid(scores)``."""
    return float(np.mean(np.logaddexp(0.0, scores) - targets * scores))


def _softmax_nll(logits: np.ndarray, classes: np.ndarray) -> float:
    """Mean negative log-likelihood of class indices under ``softmax(logits)``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(classes)), classes]))


def _check_problem_type(problem_type: str) -> None:
    if problem_type not in (MULTI_LABEL, SINGLE_LABEL):
        raise ValueError(f"problem_type must be {MULTI_LABEL!r} or {SINGLE_LABEL!r}, got {problem_type!r}")


def _as_logits_targets(logits: np.ndarray, targets: np.ndarray, problem_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes: multi-label targets are a 0/1 matrix like ``logits``, single-label a class vector."""
    _check_problem_type(problem_type)
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    if logits.ndim != 2:
        raise ValueError(f"logits must be a 2-D array (texts x labels), got shape {logits.shape}")
    if problem_type == MULTI_LABEL:
        if targets.shape != logits.shape:
            raise ValueError(f"multi-label targets must have the logits' shape {logits.shape}, got {targets.shape}")
        return logits, targets.astype(np.float64)
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"single-label targets must be a vector of {logits.shape[0]} class indices, got shape {targets.shape}")
    if len(targets) and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(f"single-label targets must be class indices in [0, {logits.shape[1]}), got {targets.min()}..{targets.max()}")
    return logits, targets.astype(np.int64)


def _fit_temperature(logits: np.ndarray, targets: np.ndarray, problem_type: str) -> float:
    """The scalar T minimising validation NLL of ``logits / T``; 1.0 when there is nothing to fit."""
    if problem_type == MULTI_LABEL:
        positives = targets.sum(axis=0)
        informative = (positives > 0) & (positives < len(targets))
        if not informative.any():
            return 1.0
        z, y = logits[:, informative], targets[:, informative]

        def objective(log_t: float) -> float:
            return _binary_nll(z / np.exp(log_t), y)
    else:
        if len(np.unique(targets)) < 2:
            return 1.0

        def objective(log_t: float) -> float:
            return _softmax_nll(logits / np.exp(log_t), targets)

    result = minimize_scalar(objective, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-5})
    temperature = float(np.exp(result.x))
    return temperature if objective(np.log(temperature)) <= objective(0.0) else 1.0


def _fit_platt_one(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Platt's ``(a, b)`` for one binary score vector; identity ``(1, 0)`` without both classes."""
    n_pos = int(targets.sum())
    n_neg = len(targets) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 1.0, 0.0
    # Platt's smoothed targets keep a, b finite on separable or tiny validation sets.
    soft = np.where(targets > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        s = a * scores + b
        residual = (sigmoid(s) - soft) / len(scores)
        return _binary_nll(s, soft), np.array([np.dot(residual, scores), residual.sum()])

    result = minimize(objective, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[_A_BOUNDS, _B_BOUNDS])
    a, b = (float(v) for v in result.x)
    return a, b


def platt_parameters(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Platt's ``(a, b)`` mapping one binary score vector to ``sigmoid(a * score + b)``."""
    return _fit_platt_one(np.asarray(scores, dtype=np.float64).ravel(), np.asarray(targets, dtype=np.float64).ravel())


def fit_calibration(
    logits: np.ndarray, targets: np.ndarray, method: CalibrationMethod, problem_type: ProblemType
) -> dict[str, Any]:
    """Fit calibration parameters on validation logits and targets.

    ``targets`` is a 0/1 matrix shaped like ``logits`` (multi-label) or a vector of class indices
    (single-label). Labels with no positive (or no negative) on validation keep the identity.
    Platt for single-label with more than two classes falls back to temperature scaling.
    """
    logits, targets = _as_logits_targets(logits, targets, problem_type)
    if method == "none":
        return {"method": "none"}
    if method == "platt" and problem_type == SINGLE_LABEL and logits.shape[1] != 2:
        logger.info("Platt scaling needs two classes; using temperature scaling for %d classes", logits.shape[1])
        method = "temperature"
    if method == "temperature":
        return {"method": "temperature", "temperature": _fit_temperature(logits, targets, problem_type)}
    if method != "platt":
        raise ValueError(f"calibration method must be 'temperature', 'platt' or 'none', got {method!r}")
    if problem_type == SINGLE_LABEL:
        a, b = _fit_platt_one(logits[:, 1] - logits[:, 0], (targets == 1).astype(np.float64))
        return {"method": "platt", "a": [a], "b": [b]}
    pairs = [_fit_platt_one(logits[:, j], targets[:, j]) for j in range(logits.shape[1])]
    return {"method": "platt", "a": [a for a, _ in pairs], "b": [b for _, b in pairs]}


def apply_calibration(logits: np.ndarray, params: dict[str, Any], problem_type: ProblemType) -> np.ndarray:
    """Calibrated probabilities from raw logits: sigmoid per label (multi-label) or softmax rows."""
    _check_problem_type(problem_type)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be a 2-D array (texts x labels), got shape {logits.shape}")
    method = params.get("method", "none")
    if method == "temperature":
        temperature = float(params["temperature"])
        if not temperature > 0:
            raise ValueError(f"calibration temperature must be positive, got {temperature}")
        logits = logits / temperature
    elif method == "platt":
        a = np.asarray(params["a"], dtype=np.float64)
        b = np.asarray(params["b"], dtype=np.float64)
        if problem_type == SINGLE_LABEL:
            if logits.shape[1] != 2 or a.shape != (1,) or b.shape != (1,):
                raise ValueError("single-label Platt calibration needs 2 classes and one a, b pair")
            p1 = sigmoid(a[0] * (logits[:, 1] - logits[:, 0]) + b[0])
            return np.stack([1.0 - p1, p1], axis=1)
        if a.shape != (logits.shape[1],) or b.shape != (logits.shape[1],):
            raise ValueError(f"Platt calibration has {a.size} a / {b.size} b values for {logits.shape[1]} labels")
        logits = logits * a + b
    elif method != "none":
        raise ValueError(f"unknown calibration method {method!r}; expected 'temperature', 'platt' or 'none'")
    return sigmoid(logits) if problem_type == MULTI_LABEL else softmax(logits)


def tune_thresholds(
    probs: np.ndarray, targets: np.ndarray, grid: Sequence[float] = DEFAULT_GRID, default: float = 0.5
) -> list[float]:
    """Per label, the threshold on ``probs`` maximising validation F1 (``prob >= threshold``).

    Ties go to the threshold closest to 0.5; labels with no positive get ``default``; every
    threshold lies in [0.05, 0.95].
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets).astype(bool)
    if probs.ndim != 2 or targets.shape != probs.shape:
        raise ValueError(f"probs and targets must be 2-D arrays of one shape, got {probs.shape} and {targets.shape}")
    candidates = np.clip(np.asarray(sorted(set(float(t) for t in grid)), dtype=np.float64), THRESHOLD_MIN, THRESHOLD_MAX)
    if candidates.size == 0:
        raise ValueError("the threshold grid is empty")
    thresholds: list[float] = []
    for j in range(probs.shape[1]):
        positives = targets[:, j]
        n_pos = int(positives.sum())
        if n_pos == 0:
            thresholds.append(float(default))
            continue
        predicted = probs[:, j, None] >= candidates[None, :]
        tp = (predicted & positives[:, None]).sum(axis=0)
        f1 = 2.0 * tp / (predicted.sum(axis=0) + n_pos)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        thresholds.append(float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]]))
    return thresholds


@dataclass
class ReliabilityCurve:
    """Equal-width confidence bins on [0, 1]; empty bins hold NaN accuracy and confidence."""

    centers: np.ndarray
    accuracy: np.ndarray
    """Observed frequency of the event (label present, or top class right) per bin."""
    confidence: np.ndarray
    """Mean predicted probability per bin."""
    counts: np.ndarray


def _confidence_outcome(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to (confidence, 0/1 outcome) pairs: per label-probability, or top class for class-index targets."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if probs.ndim == 2 and targets.ndim == 1:
        if targets.shape[0] != probs.shape[0]:
            raise ValueError(f"{targets.shape[0]} class indices for {probs.shape[0]} probability rows")
        return probs.max(axis=1), (probs.argmax(axis=1) == targets).astype(np.float64)
    if targets.shape != probs.shape:
        raise ValueError(f"targets of shape {targets.shape} do not match probabilities of shape {probs.shape}")
    return probs.ravel(), targets.astype(np.float64).ravel()


def reliability_curve(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> ReliabilityCurve:
    """Reliability diagram data.

    ``targets`` shaped like ``probs`` (0/1, multi-label) bins every label-probability;
    a vector of class indices (single-label) bins the top-class confidence against accuracy.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence, outcome = _confidence_outcome(probs, targets)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(bins, weights=outcome, minlength=n_bins) / counts
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
    return ReliabilityCurve(centers=(edges[:-1] + edges[1:]) / 2, accuracy=accuracy, confidence=mean_conf, counts=counts)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Count-weighted mean gap between confidence and observed frequency over the reliability bins."""
    curve = reliability_curve(probs, targets, n_bins)
    total = curve.counts.sum()
    if total == 0:
        return 0.0
    filled = curve.counts > 0
    gaps = np.abs(curve.accuracy[filled] - curve.confidence[filled])
    return float(np.sum(gaps * curve.counts[filled]) / total)


class CalibratedClassifier:
    """``predict_proba`` for backends: their ``decision_function`` passed through ``meta.calibration``."""

    meta: ModelMeta

    def decision_function(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Raw logits; every backend defines its own."""
        raise NotImplementedError

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(labels))``."""
        logits = self.decision_function(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return apply_calibration(logits, self.meta.calibration, self.meta.problem_type)
