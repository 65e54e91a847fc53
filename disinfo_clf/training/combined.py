"""Training a combined model: choosing the mix of two trained directories on validation, the card's
comparison of the mix with its parts and variants, and pointing the result at refit parts."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, TrainingConfig
from .evaluation import METRICS_FILE, SplitData, save_metrics
from .card import CARD_FILE, render_card
from ..models.meta import MULTI_LABEL, TextClassifier
from ..models.registry import load_classifier
from .crosslingual import load_translated, narrative_split, role_split
from ..text.language import detect_language
from ..models.combined import Part, fit_combined

logger = logging.getLogger(__name__)


def fit_combined_model(config: TrainingConfig, labels: list[str], problem_type: str, splits: dict[str, SplitData],
                  label_names: dict[str, str], output_dir: Path) -> TextClassifier:

    spec = config.combined
    if len(spec.parts) != 2 or not all(p.path for p in spec.parts):
        raise ConfigError("combined.parts must name exactly two model directories (name and path)")
    val = splits["validation"]
    validation = [(val.texts, val.gold, [detect_language(t) or "" for t in val.texts])]
    if spec.translated_validation:
        items = [it for it in load_translated("dev") if it.lang != "en"]
        extra = narrative_split(items, labels) if problem_type == MULTI_LABEL else role_split(items, labels)
        validation.append((extra.texts, extra.gold, extra.languages))
    return fit_combined(
        [Part(p.name or f"part{i}", os.path.relpath(Path(p.path).resolve(), output_dir.resolve()))
         for i, p in enumerate(spec.parts)], output_dir, validation,
        labels=labels, problem_type=problem_type, task=config.task, groups=spec.languages, label_names=label_names,
        tune_thresholds=config.tune_thresholds,
    )


def _summary(metrics: dict[str, Any], role: str) -> dict[str, Any]:
    """The card's one-line summary of a model's metrics.json."""
    keys = ("macro_f1", "top1_hit", "accuracy")
    row: dict[str, Any] = {"role": role}
    for split in ("validation", "test"):
        res = metrics.get("splits", {}).get(split, {})
        row[split] = {k: res[k] for k in keys if k in res}
    for split, res in (metrics.get("translated") or {}).items():
        other = [v for lang, v in res.items() if lang not in ("all", "en")]
        if other and "top1_hit" in other[0]:
            row[f"translated_{split}"] = (f"{np.mean([v['top1_hit'] for v in other]):.3f} / "
                                          f"{np.mean([v['macro_f1'] for v in other]):.3f}")
        elif other:
            row[f"translated_{split}"] = f"{np.mean([v['accuracy'] for v in other]):.3f}"
    return row


def compared(config: TrainingConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """Summaries of the combined model, its parts and the configured comparison variants."""
    rows = {"this model": _summary(metrics, "the mix (shipped)")}
    for role, specs in (("part", config.combined.parts), ("variant, not used", config.combined.compare)):
        for spec in specs:
            candidates = [Path(spec.release_path or spec.path), Path(spec.path), Path(spec.path).parent]
            found = next((c / METRICS_FILE for c in candidates if (c / METRICS_FILE).is_file()), None)
            if found is None:
                logger.warning("no metrics.json for %s (%s): left out of the comparison", spec.name, spec.path)
                continue
            rows[spec.name or spec.path] = _summary(json.loads(found.read_text(encoding="utf-8")), role)
    return rows


def point_at_release_parts(config: TrainingConfig, model: TextClassifier, work: Path,
                            metrics: dict[str, Any]) -> dict[str, Any]:
    """After the held-out evaluation with the time-split parts, point the combined model at the
    parts refit on all periods (same weights and thresholds), as ``refit_on_all_data`` does."""

    model.part_specs = [  # type: ignore[attr-defined]
        Part(spec.name or part.name, os.path.relpath(Path(spec.release_path or spec.path).resolve(), work.resolve()))
        for spec, part in zip(config.combined.parts, model.part_specs)  # type: ignore[attr-defined]
    ]
    model.save_pretrained(work)
    load_classifier(work)  # the release parts must load and have the same labels
    metrics["refit"] = {
        "parts": {p.name: p.path for p in model.part_specs},  # type: ignore[attr-defined]
        "note": "the split metrics are those of the combined model over the time-split parts; the directory "
                "points at the parts refit on all periods, with the same weights and thresholds",
    }
    save_metrics(metrics, work / METRICS_FILE)
    (work / CARD_FILE).write_text(render_card(work), encoding="utf-8")
    return metrics
