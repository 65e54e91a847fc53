"""Metrics for a model directory on a split: F1s, top-1 hit, calibration, baseline, plots."""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from .metrics import load_metric
from ..models.meta import MULTI_LABEL, TextClassifier
from ..models.calibration import expected_calibration_error, reliability_curve

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
"""Where a model directory keeps its measured metrics."""
MIN_LANGUAGE_SUPPORT = 20
"""Languages with fewer test cases than this are pooled as ``other`` in per-language results."""


@functools.lru_cache(maxsize=1)
def _multilabel_f1() -> Any:
    """The shipped ``evaluate`` module for macro/micro/samples F1 (SemEval-2025 Task 10 style)."""
    return load_metric("multilabel_f1")


def multilabel_metrics(gold: np.ndarray, probs: np.ndarray, thresholds: Sequence[float], labels: Sequence[str]) -> dict[str, Any]:
    """F1s, top-1 hit, per-label P/R/F1 with support and ECE for multi-label probabilities."""
    gold = np.asarray(gold, dtype=int)
    pred = (probs >= np.asarray(thresholds)[None, :]).astype(int)
    has_gold = gold.sum(axis=1) > 0
    top = probs.argmax(axis=1)
    hits = gold[np.arange(len(gold)), top].astype(bool)
    p, r, f, s = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
    f1s = _multilabel_f1().compute(predictions=pred.tolist(), references=gold.tolist())
    return {
        "n": int(len(gold)),
        **f1s,
        "top1_hit": float(hits[has_gold].mean()) if has_gold.any() else float("nan"),
        "ece": float(expected_calibration_error(probs, gold)),
        "per_label": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def singlelabel_metrics(gold: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1 with support and ECE for single-label probabilities."""
    gold = np.asarray(gold, dtype=int)
    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(range(len(labels))), average=None, zero_division=0)
    return {
        "n": int(len(gold)),
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
        "ece": float(expected_calibration_error(probs, gold)),
        "per_label": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def majority_baseline(train_gold: np.ndarray, n: int, n_labels: int, multi_label: bool) -> np.ndarray:
    """Probabilities of the prior/majority baseline: each label's training prevalence, for every text."""
    train_gold = np.asarray(train_gold)
    if multi_label:
        prior = train_gold.mean(axis=0)
    else:
        prior = np.bincount(train_gold.astype(int), minlength=n_labels) / len(train_gold)
    return np.tile(prior, (n, 1))


@dataclass
class SplitData:
    """Texts, gold targets (multi-hot matrix or class ids) and languages of one split."""

    texts: list[str]
    gold: np.ndarray
    languages: list[str]


def evaluate_split(
    model: TextClassifier, data: SplitData, train_gold: np.ndarray, batch_size: int = 64
) -> dict[str, Any]:
    """Metrics of ``model`` and of the majority baseline on one split, with per-language results."""
    labels = list(model.labels)
    multi = model.meta.problem_type == MULTI_LABEL
    probs = model.predict_proba(data.texts, batch_size=batch_size)
    base = majority_baseline(train_gold, len(data.texts), len(labels), multi)
    if multi:
        result = multilabel_metrics(data.gold, probs, model.meta.decision_thresholds, labels)
        # The baseline flags the most frequent narrative for every text.
        flag = np.zeros(len(labels))
        flag[int(np.argmax(base[0]))] = 1
        base_thr = np.where(flag > 0, 0.0, 1.1)
        result["baseline"] = {k: v for k, v in multilabel_metrics(data.gold, base, base_thr, labels).items() if k != "per_label"}
    else:
        result = singlelabel_metrics(data.gold, probs, labels)
        result["baseline"] = {k: v for k, v in singlelabel_metrics(data.gold, base, labels).items() if k != "per_label"}
    langs = np.array([lang or "unknown" for lang in data.languages])
    counts = {lang: int((langs == lang).sum()) for lang in set(langs.tolist())}
    per_language: dict[str, Any] = {}
    pooled = np.array([lang if counts[lang] >= MIN_LANGUAGE_SUPPORT else "other" for lang in langs])
    for lang in sorted(set(pooled.tolist()), key=lambda x: -int((pooled == x).sum())):
        mask = pooled == lang
        sub = (
            multilabel_metrics(data.gold[mask], probs[mask], model.meta.decision_thresholds, labels)
            if multi
            else singlelabel_metrics(data.gold[mask], probs[mask], labels)
        )
        per_language[lang] = {k: v for k, v in sub.items() if k not in ("per_label",)}
    result["per_language"] = per_language
    result["_probs"] = probs
    return result


def write_plots(metrics: dict[str, Any], probs: np.ndarray, gold: np.ndarray, directory: str | Path, prefix: str) -> list[Path]:
    """Per-label F1 bar chart and reliability diagram as PNG files; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    paths = []
    per = metrics["per_label"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(per) + 1.5))
    names = list(per)
    ax.barh(names, [per[n]["f1"] for n in names], color="#3b6ea5")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("F1")
    ax.set_title(f"Per-label F1 ({prefix})")
    fig.tight_layout()
    paths.append(directory / f"{prefix}_per_label_f1.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    curve = reliability_curve(probs, gold)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    seen = curve.counts > 0
    ax.plot(curve.confidence[seen], curve.accuracy[seen], "o-", color="#c0392b", label="model")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Reliability ({prefix}), ECE {metrics['ece']:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    paths.append(directory / f"{prefix}_reliability.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def save_metrics(metrics: dict[str, Any], path: str | Path) -> None:
    """Write metrics as JSON (private ``_``-keys left out)."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if not str(k).startswith("_")}
        if isinstance(obj, float) and not np.isfinite(obj):
            return None
        return obj

    Path(path).write_text(json.dumps(clean(metrics), indent=2) + "\n", encoding="utf-8")
