"""Calibration, thresholds and calibration diagnostics shared by both backends."""
from __future__ import annotations

import json

import numpy as np
import pytest

from disinfo_clf.models.meta import MULTI_LABEL, SINGLE_LABEL
from disinfo_clf.models.calibration import (
    apply_calibration,
    expected_calibration_error,
    fit_calibration,
    reliability_curve,
    sigmoid,
    softmax,
    tune_thresholds,
)


def _binary_nll(probs: np.ndarray, targets: np.ndarray) -> float:
    probs = np.clip(probs, 1e-12, 1 - 1e-12)
    return float(-np.mean(targets * np.log(probs) + (1 - targets) * np.log(1 - probs)))


def _class_nll(probs: np.ndarray, classes: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(classes)), classes], 1e-12, None))))


@pytest.fixture(scope="module")
def overconfident() -> tuple[np.ndarray, np.ndarray]:
    """Multi-label logits three times too large for the labels drawn from the true probabilities."""
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 1.5, size=(4000, 3))
    targets = (rng.random(true_logits.shape) < sigmoid(true_logits)).astype(int)
    return 3.0 * true_logits, targets


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_calibration_reduces_nll_and_ece_of_overconfident_logits(overconfident, method):
    logits, targets = overconfident
    raw = apply_calibration(logits, {"method": "none"}, MULTI_LABEL)
    params = fit_calibration(logits, targets, method, MULTI_LABEL)
    calibrated = apply_calibration(logits, params, MULTI_LABEL)
    assert _binary_nll(calibrated, targets) < _binary_nll(raw, targets) - 0.05
    assert expected_calibration_error(calibrated, targets) < 0.5 * expected_calibration_error(raw, targets)
    assert expected_calibration_error(calibrated, targets) < 0.03
    json.dumps(params)  # stored in disinfo_clf.json


def test_temperature_recovers_the_overconfidence_factor(overconfident):
    logits, targets = overconfident
    params = fit_calibration(logits, targets, "temperature", MULTI_LABEL)
    assert params["method"] == "temperature"
    assert params["temperature"] == pytest.approx(3.0, rel=0.15)


def test_platt_keeps_identity_for_label_without_positives(overconfident):
    logits, targets = overconfident
    targets = targets.copy()
    targets[:, 1] = 0
    params = fit_calibration(logits, targets, "platt", MULTI_LABEL)
    assert (params["a"][1], params["b"][1]) == (1.0, 0.0)
    assert params["a"][0] == pytest.approx(1 / 3, rel=0.2)
    probs = apply_calibration(logits, params, MULTI_LABEL)
    np.testing.assert_allclose(probs[:, 1], sigmoid(logits[:, 1]))


def test_temperature_ignores_labels_without_positives(overconfident):
    logits, targets = overconfident
    with_empty = np.hstack([logits, np.full((len(logits), 1), -2.0)])
    empty_targets = np.hstack([targets, np.zeros((len(targets), 1), dtype=int)])
    plain = fit_calibration(logits, targets, "temperature", MULTI_LABEL)["temperature"]
    assert fit_calibration(with_empty, empty_targets, "temperature", MULTI_LABEL)["temperature"] == pytest.approx(plain)


def test_single_label_two_class_platt_sums_to_one_and_improves_nll():
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, size=3000)
    classes = (rng.random(3000) < sigmoid(z + 1.0)).astype(int)  # shifted: the raw model is biased
    logits = np.stack([-2.0 * z, 2.0 * z], axis=1)
    params = fit_calibration(logits, classes, "platt", SINGLE_LABEL)
    probs = apply_calibration(logits, params, SINGLE_LABEL)
    assert probs.shape == (3000, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    raw = apply_calibration(logits, {"method": "none"}, SINGLE_LABEL)
    assert _class_nll(probs, classes) < _class_nll(raw, classes) - 0.05
    assert params["a"][0] == pytest.approx(0.25, rel=0.2)  # the logit difference is 4z
    assert params["b"][0] == pytest.approx(1.0, abs=0.25)


def test_single_label_many_classes_platt_falls_back_to_temperature():
    rng = np.random.default_rng(2)
    true_logits = rng.normal(0.0, 1.0, size=(3000, 4))
    probs_true = softmax(true_logits)
    classes = np.array([rng.choice(4, p=p) for p in probs_true])
    params = fit_calibration(4.0 * true_logits, classes, "platt", SINGLE_LABEL)
    assert params["method"] == "temperature"
    assert params["temperature"] == pytest.approx(4.0, rel=0.2)
    calibrated = apply_calibration(4.0 * true_logits, params, SINGLE_LABEL)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    raw = softmax(4.0 * true_logits)
    assert expected_calibration_error(calibrated, classes) < expected_calibration_error(raw, classes)


def test_none_is_plain_sigmoid_or_softmax():
    logits = np.array([[0.0, 2.0, -1.0]])
    np.testing.assert_allclose(apply_calibration(logits, {"method": "none"}, MULTI_LABEL), sigmoid(logits))
    assert fit_calibration(logits, np.array([[0, 1, 0]]), "none", MULTI_LABEL) == {"method": "none"}
    probs = apply_calibration(logits, {"method": "none"}, SINGLE_LABEL)
    np.testing.assert_allclose(probs, np.exp(logits) / np.exp(logits).sum())


def test_bad_parameters_are_refused_with_a_clear_error():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibration(logits, {"method": "isotonic"}, MULTI_LABEL)
    with pytest.raises(ValueError, match="3 labels"):
        apply_calibration(logits, {"method": "platt", "a": [1.0], "b": [0.0]}, MULTI_LABEL)
    with pytest.raises(ValueError, match="shape"):
        fit_calibration(logits, np.zeros((2, 2)), "platt", MULTI_LABEL)


def test_tune_thresholds_finds_the_best_threshold():
    probs = np.array([[0.1, 0.3], [0.2, 0.4], [0.6, 0.2], [0.7, 0.9], [0.8, 0.1], [0.9, 0.35]])
    targets = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 0], [1, 0]])
    # Label 0: every threshold in (0.6, 0.7] gives F1 = 1; the tie goes to the one nearest 0.5.
    # Label 1 has no positive: the default.
    assert tune_thresholds(probs, targets) == [pytest.approx(0.61), 0.5]


def test_tune_thresholds_prefers_recall_when_it_pays():
    probs = np.array([[0.2], [0.3], [0.1], [0.05]])
    targets = np.array([[1], [1], [0], [0]])
    assert tune_thresholds(probs, targets) == [pytest.approx(0.2)]


def test_tune_thresholds_stay_within_bounds():
    probs = np.array([[0.01, 0.99], [0.02, 0.999], [0.001, 0.98]])
    targets = np.array([[1, 0], [1, 1], [0, 0]])
    thresholds = tune_thresholds(probs, targets, grid=[0.0, 0.015, 0.5, 0.995, 1.0])
    assert all(0.05 <= t <= 0.95 for t in thresholds)


def test_ece_is_small_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(3)
    probs = rng.random((20000, 1))
    targets = (rng.random(probs.shape) < probs).astype(int)
    assert expected_calibration_error(probs, targets) < 0.02
    overconfident = np.where(probs > 0.5, 0.99, 0.01)
    assert expected_calibration_error(overconfident, targets) > 0.2


def test_reliability_curve_bins():
    probs = np.array([[0.05, 0.95], [0.1, 0.91], [0.92, 0.08]])  # bins are right-closed: (0.9, 1.0]
    targets = np.array([[0, 1], [0, 0], [1, 0]])
    curve = reliability_curve(probs, targets, n_bins=10)
    assert curve.counts.sum() == 6 and curve.counts[0] == 3 and curve.counts[9] == 3
    np.testing.assert_allclose(curve.centers[[0, 9]], [0.05, 0.95])
    assert curve.accuracy[9] == pytest.approx(2 / 3)
    assert curve.confidence[0] == pytest.approx((0.05 + 0.1 + 0.08) / 3)
    assert np.isnan(curve.accuracy[5])

    single = reliability_curve(probs, np.array([1, 0, 1]), n_bins=10)  # class indices: top-class confidence
    assert single.counts.sum() == 3 and single.counts[9] == 3
    assert single.accuracy[9] == pytest.approx(1 / 3)
