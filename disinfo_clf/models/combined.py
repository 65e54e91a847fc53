"""The combined backend: calibrated probabilities of several model directories, mixed per language.

A multilingual embedding head reads every language; the TF-IDF model reads English well and
other languages hardly at all. The combined model averages their calibrated probabilities with
weights chosen on validation for each language group (``en`` and ``other`` by default), so that
English keeps what the lexical model knows and other languages are not dragged down by it.

``combined.json`` lists the parts (directories relative to this one, or absolute) and the
weights; ``disinfo_clf.json`` holds the labels, thresholds and an optional calibration of the
mix. Mixing happens on probabilities (the parts' calibrated ones); the per-group Platt step turns the
mix into logits once, ``a * logit(mix) + b``, and those are the model's logits (for two classes,
``[0, z]``, whose softmax is ``sigmoid(z)``), so that uncalibrated they read back the calibrated mix
and no probability goes through sigmoid and logit again.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..text.language import OTHER, detect_language, language_groups
from .calibration import CalibratedClassifier, apply_calibration, logit, platt_parameters, sigmoid
from .calibration import tune_thresholds as tune
from .embedding_head import embeddings_of
from .folder_checks import check_finite
from .manifest import part_checksum
from .meta import (CONFIG_FILE, META_FILE, MULTI_LABEL, ModelDirectoryError, ModelMeta, TextClassifier, require_files,
                   write_hf_config)
from .registry import load_classifier

logger = logging.getLogger(__name__)

MODEL_TYPE = "disinfo-combined"
COMBINED_FILE = "combined.json"
_EPS = 1e-6


@dataclass(frozen=True)
class Part:
    """One model directory of a combined model."""

    name: str
    path: str
    """As written in ``combined.json``: relative to the combined directory, or absolute."""


def _resolve(directory: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else (directory / candidate).resolve()


def mix(probabilities: Sequence[np.ndarray], groups: Sequence[str], weights: dict[str, list[float]]) -> np.ndarray:
    """Per text, the weighted mean of the parts' probabilities with its group's weights."""
    out = np.zeros_like(np.asarray(probabilities[0], dtype=np.float64))
    group_array = np.asarray(groups)
    for group, w in weights.items():
        mask = group_array == group
        if mask.any():
            total = float(sum(w)) or 1.0
            out[mask] = sum(wi * np.asarray(p, dtype=np.float64)[mask] for wi, p in zip(w, probabilities)) / total
    return out


class CombinedClassifier(CalibratedClassifier):
    """Several calibrated classifiers over the same labels, mixed per language group."""

    def __init__(self, meta: ModelMeta, parts: list[Part], models: list[TextClassifier],
                 weights: dict[str, list[float]], group_calibration: dict[str, list[float]] | None = None) -> None:
        for part, model in zip(parts, models):
            if list(model.labels) != list(meta.labels):
                raise ModelDirectoryError(f"part {part.name} ({part.path}) has labels {list(model.labels)}, not {meta.labels}")
        if OTHER not in weights:
            raise ModelDirectoryError(f"combined weights need an {OTHER!r} group, got {sorted(weights)}")
        for group, w in weights.items():
            if len(w) != len(parts) or any(not np.isfinite(x) or x < 0 for x in w) or not sum(w) > 0:
                raise ModelDirectoryError(f"combined weights of {group!r} must be {len(parts)} non-negative numbers, not all 0")
        self.meta = meta
        self.part_specs = parts
        self.parts = models
        self.weights = {g: [float(x) for x in w] for g, w in weights.items()}
        self.group_calibration = {g: [float(a), float(b)] for g, (a, b) in (group_calibration or {}).items()}
        """Per language group, Platt ``(a, b)`` applied to the mix, so that the groups' probabilities
        (and one set of thresholds) mean the same: a mix whose lexical part cannot read a language
        is otherwise compressed towards 0."""

    @property
    def labels(self) -> list[str]:
        """Label ids, in the column order of :meth:`predict_proba`."""
        return list(self.meta.labels)

    def part_probabilities(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None,
                           embeddings: np.ndarray | None = None) -> list[np.ndarray]:
        """Each part's calibrated probabilities; parts that read embeddings get ``embeddings``."""
        return [read_proba(model, texts, embeddings=embeddings, batch_size=batch_size, show_progress_bar=show_progress_bar)
                for model in self.parts]

    def mixed_probabilities(self, texts: Sequence[str], languages: Sequence[str | None] | None = None,
                            batch_size: int = 64, show_progress_bar: bool | None = None,
                            embeddings: np.ndarray | None = None) -> np.ndarray:
        """The mix after its per-group calibration, before this model's own; ``languages`` default
        to the detector's."""
        mixed, groups = self._mix(texts, languages, batch_size, show_progress_bar, embeddings)
        return recalibrate(mixed, groups, self.group_calibration)

    def _mix(self, texts: Sequence[str], languages: Sequence[str | None] | None, batch_size: int,
             show_progress_bar: bool | None, embeddings: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
        if languages is None:
            languages = [detect_language(t) for t in texts]
        probs = self.part_probabilities(texts, batch_size=batch_size, show_progress_bar=show_progress_bar,
                                        embeddings=embeddings)
        groups = language_groups(languages, list(self.weights))
        return mix(probs, groups, self.weights), groups

    def decision_function(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None,
                          embeddings: np.ndarray | None = None, languages: Sequence[str | None] | None = None) -> np.ndarray:
        """Logits whose uncalibrated reading is the calibrated mix: ``a * logit(mix) + b`` per label
        (multi-label); ``[0, z]`` for two classes, whose softmax is ``sigmoid(z)`` (not a sharpened
        ``sigmoid(2z)``); ``log(mix)`` for more classes. Calibration then applies as for any backend."""
        mixed, groups = self._mix(texts, languages, batch_size, show_progress_bar, embeddings)
        if self.meta.problem_type == MULTI_LABEL:
            return recalibrated_logits(mixed, groups, self.group_calibration)
        if mixed.shape[1] == 2:
            z = recalibrated_logits(mixed[:, 1], groups, self.group_calibration)
            return np.stack([np.zeros_like(z), z], axis=1)
        return np.log(np.clip(recalibrate(mixed, groups, self.group_calibration), _EPS, 1.0))

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None,
                      embeddings: np.ndarray | None = None, languages: Sequence[str | None] | None = None) -> np.ndarray:
        """Calibrated probabilities of the mix."""

        logits = self.decision_function(texts, batch_size, show_progress_bar, embeddings, languages)
        return apply_calibration(logits, self.meta.calibration, self.meta.problem_type)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json, disinfo_clf.json and combined.json (the parts stay where they are)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_hf_config(directory, self.meta, {"model_type": MODEL_TYPE})
        self.meta.save(directory)
        parts = [{"name": p.name, "type": m.meta.backend, "path": p.path,
                  "sha256": part_checksum(_resolve(directory, p.path))} for p, m in zip(self.part_specs, self.parts)]
        data = {"parts": parts, "weights": self.weights,
                "group_calibration": self.group_calibration}
        Path(directory, COMBINED_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "CombinedClassifier":
        """Load the directory and every part it names."""
        directory = Path(directory)
        require_files(directory, [CONFIG_FILE, META_FILE, COMBINED_FILE])
        meta = ModelMeta.load(directory)
        path = directory / COMBINED_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            parts = [Part(str(p["name"]), str(p["path"])) for p in data["parts"]]
            checksums = [p.get("sha256") for p in data["parts"]]
            types = [p.get("type") for p in data["parts"]]
            weights = {str(g): [float(x) for x in w] for g, w in data["weights"].items()}
            group_calibration = {str(g): [float(a), float(b)] for g, (a, b) in data.get("group_calibration", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelDirectoryError(f"{path} is corrupt ({exc}): it needs 'parts' [{{name, path}}] and 'weights' {{group: [...]}}") from exc
        check_finite(weights, path, "'weights'")
        check_finite(group_calibration, path, "'group_calibration'")
        models = []
        for part, checksum, kind in zip(parts, checksums, types):
            part_dir = _resolve(directory, part.path)
            if checksum is not None and part_checksum(part_dir) != checksum:
                raise ModelDirectoryError(
                    f"{path}: part {part.name} ({part_dir}) is not the one this model was combined from (its files "
                    "changed since): retrain the combined model (disinfo-clf train --config configs/default.yaml), "
                    "or restore the part")
            if part_dir == directory.resolve() or _resolve(part_dir, ".") == directory.resolve():
                raise ModelDirectoryError(f"{path}: part {part.name} points at the combined directory itself")
            backend = ModelMeta.load(part_dir).backend
            if kind is not None and kind != backend:
                raise ModelDirectoryError(f"{path}: part {part.name} is listed as {kind!r} but {part_dir} holds a {backend!r} model")
            if backend == "combined":
                raise ModelDirectoryError(f"{path}: part {part.name} is itself a combined model; name its parts instead")
            models.append(load_classifier(part_dir))
        return cls(meta, parts, models, weights, group_calibration)


def recalibrated_logits(probs: np.ndarray, groups: Sequence[str], calibration: dict[str, list[float]]) -> np.ndarray:
    """``a * logit(p) + b`` with each text's group's Platt ``(a, b)`` (``logit(p)`` for a group
    without one), rows of ``probs`` being texts."""
    z = logit(np.asarray(probs, dtype=np.float64))
    group_array = np.asarray(groups)
    for group, (a, b) in calibration.items():
        mask = group_array == group
        if mask.any():
            z[mask] = a * z[mask] + b
    return z


def recalibrate(probs: np.ndarray, groups: Sequence[str], calibration: dict[str, list[float]]) -> np.ndarray:
    """``sigmoid(a * logit(p) + b)`` with each text's group's ``(a, b)``; for two-class rows (single
    label) the second column is recalibrated and the first is its complement."""
    if not calibration:
        return probs
    out = np.array(probs, dtype=np.float64)
    two_class = out.ndim == 2 and out.shape[1] == 2 and np.allclose(out.sum(axis=1), 1.0)
    if two_class:
        p1 = sigmoid(recalibrated_logits(out[:, 1], groups, calibration))
        return np.stack([1.0 - p1, p1], axis=1)
    return sigmoid(recalibrated_logits(out, groups, calibration))


def tune_weights(part_probs: Sequence[np.ndarray], gold: np.ndarray, groups: Sequence[str],
                 grid: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11))) -> dict[str, list[float]]:
    """For two parts, per language group, the weight of the first part that maximises the mean
    average precision over labels on validation (threshold-free; ties go to the even mix)."""
    from sklearn.metrics import average_precision_score

    if len(part_probs) != 2:
        raise ValueError(f"weight tuning mixes two parts, got {len(part_probs)}")
    group_array = np.asarray(groups)
    weights: dict[str, list[float]] = {}
    for group in sorted(set(groups) | {OTHER}):
        mask = group_array == group
        cols = [j for j in range(gold.shape[1]) if 0 < gold[mask, j].sum() < mask.sum()] if mask.any() else []
        if not cols:
            weights[group] = [0.5, 0.5]
            continue
        scores = []
        for w in grid:
            p = w * part_probs[0][mask] + (1 - w) * part_probs[1][mask]
            scores.append(float(np.mean([average_precision_score(gold[mask, j], p[:, j]) for j in cols])))
        best = max(scores)
        choice = min((w for w, s in zip(grid, scores) if s >= best - 1e-9), key=lambda w: abs(w - 0.5))
        logger.info("combined weights for %s: %.1f / %.1f (mean AP %.3f; first part alone %.3f, second alone %.3f)",
                    group, choice, 1 - choice, best, scores[-1], scores[0])
        weights[group] = [round(float(choice), 6), round(float(1 - choice), 6)]
    return weights


def read_proba(model: TextClassifier, texts: Sequence[str], *, embeddings: np.ndarray | None = None,
               languages: Sequence[str | None] | None = None, batch_size: int = 64,
               show_progress_bar: bool | None = None) -> np.ndarray:
    """``model.predict_proba(texts)``, handing precomputed ``embeddings`` of the texts to a model
    that reads embeddings, and the texts' ``languages`` to a combined model."""
    kwargs: dict[str, Any] = {"batch_size": batch_size, "show_progress_bar": show_progress_bar}
    if embeddings is not None and embeddings_of(model):
        kwargs["embeddings"] = embeddings
    if languages is not None and isinstance(model, CombinedClassifier):
        kwargs["languages"] = languages
    return np.asarray(model.predict_proba(texts, **kwargs), dtype=np.float64)


def fit_combined(parts: Sequence[Part], base_directory: str | Path, validation: Sequence[tuple[list[str], np.ndarray, list[str]]],
                 *, labels: Sequence[str], problem_type: str, task: str, groups: Sequence[str] = ("en",),
                 label_names: dict[str, str] | None = None, tune_thresholds: bool = True) -> CombinedClassifier:
    """Load two part directories and choose their mixing weights per language group (and, for
    multi-label, the decision thresholds of the mix) on validation data: ``(texts, gold, languages)``
    tuples, gold a multi-hot matrix or class ids."""

    base_directory = Path(base_directory)
    models = [load_classifier(_resolve(base_directory, p.path)) for p in parts]
    texts = [t for v in validation for t in v[0]]
    languages = [lang for v in validation for lang in v[2]]
    multi = problem_type == MULTI_LABEL
    gold = np.concatenate([v[1] if multi else np.eye(len(labels), dtype=np.int64)[v[1]] for v in validation])
    part_probs = [read_proba(m, texts, languages=languages) for m in models]
    group_of = language_groups(languages, [*groups, OTHER])
    weights = tune_weights(part_probs, gold, group_of)
    weights = {g: weights.get(g, [0.5, 0.5]) for g in (*groups, OTHER)}
    meta = ModelMeta(backend="combined", task=task, labels=list(labels), problem_type=problem_type,  # type: ignore[arg-type]
                     label_names=dict(label_names or {}))

    mixed = mix(part_probs, group_of, weights)
    group_array = np.asarray(group_of)
    calibration: dict[str, list[float]] = {}
    for group in sorted(set(group_of)):
        mask = group_array == group
        scores, targets = (logit(mixed[mask]), gold[mask]) if multi else (logit(mixed[mask, 1]), gold[mask, 1])
        calibration[group] = [round(v, 6) for v in platt_parameters(scores, targets)]
        logger.info("combined calibration for %s: a=%.3f b=%.3f (%d texts)", group, *calibration[group], int(mask.sum()))
    model = CombinedClassifier(meta, list(parts), models, weights, calibration)
    if multi and tune_thresholds:
        meta.thresholds = tune(recalibrate(mixed, group_of, calibration), gold)
    return model
