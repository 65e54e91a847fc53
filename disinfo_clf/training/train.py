"""The training run: datasets → backend → calibration and thresholds → model directory → metrics and card."""
from __future__ import annotations

import json
import logging
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import __version__
from ..config import ConfigError, TrainingConfig, to_dict
from ..models.roles import role_input
from .datasets import ROLE_LABELS, SplitReport, build_datasets
from .evaluation import METRICS_FILE, SplitData, evaluate_split, save_metrics, write_plots
from .card import CARD_FILE, render_card
from ..models.meta import META_FILE, MULTI_LABEL, SINGLE_LABEL, TextClassifier
from ..models.registry import load_classifier
from ..models.calibration import apply_calibration, fit_calibration, tune_thresholds
from ..resources import ROLE_MODEL_DIR
from .staging import check_output_dir, staged_output
from ..taxonomy import Taxonomy, load_taxonomy
from .combined import compared, fit_combined_model, point_at_release_parts
from ..data.exports import load_database_csv
from ..data.realtext import load_realtext
from ..text.sentences import text_windows
from ..models.encoder import EncoderClassifier
from ..models.linear import LinearClassifier
from ..models.embedding_head import EmbeddingHeadClassifier
from ..config import load_config
from ..encoders.cache import EmbeddingCache
from .crosslingual import evaluate_translated

logger = logging.getLogger(__name__)

TRAINING_CONFIG_FILE = "training_config.yaml"
TIME_SPLIT_DIR = "time-split"
"""Where a refit model directory keeps the time-split model its held-out metrics belong to."""


@dataclass
class TrainResult:
    """Where the model went and how it did."""

    model_dir: Path
    metrics: dict[str, Any]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and (when installed and already needed) torch."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def _labels(config: TrainingConfig, taxonomy: Taxonomy) -> tuple[list[str], str]:
    if config.task == "narrative":
        return list(taxonomy.ids), MULTI_LABEL
    return list(ROLE_LABELS), SINGLE_LABEL


def load_splits(config: TrainingConfig, taxonomy: Taxonomy, report: list[SplitReport] | None = None) -> dict[str, SplitData]:
    """The train/validation/test splits of the configured task as texts and target arrays."""
    task = "narratives" if config.task == "narrative" else "roles"
    dsd = build_datasets(
        task,
        taxonomy=taxonomy,
        review_csv=config.data.review_csv,
        database_csv=config.data.database_csv,
        test_fraction=config.data.test_fraction,
        validation_fraction=config.data.validation_fraction,
        max_cases=config.data.max_cases,
        report=report,
    )
    out = {}
    for split, ds in dsd.items():
        if task == "narratives":
            gold = np.zeros((len(ds), len(taxonomy.ids)), dtype=np.int64)
            for i, labs in enumerate(ds["labels"]):
                gold[i, labs] = 1
            langs = ds["language"]
        else:
            gold = np.asarray(ds["label"], dtype=np.int64)
            langs = [""] * len(ds)
        texts = list(ds["text"]) if task == "narratives" else [role_input(t, c) for t, c in zip(ds["text"], ds["context"])]
        out[split] = SplitData(texts=texts, gold=gold, languages=list(langs))
        if task == "roles" and split == "train":
            out[split] = _augment_roles(out[split], ds, config, before=min(dsd["validation"]["date"], default=""))
    empty = [name for name, data in out.items() if not data.texts]
    if empty:
        raise ConfigError(
            f"the {empty[0]} split is empty: give more (or longer) cases, or change data.test_fraction / "
            "data.validation_fraction"
        )
    return out


def _augment_roles(train: SplitData, ds: Any, config: TrainingConfig, before: str) -> SplitData:
    """The role training split with the extra views ``data.role_sentence_view``, ``data.role_title_claims``
    and ``data.role_realtext_units`` ask for (all only ever add training rows)."""
    texts, gold = list(train.texts), list(train.gold)
    if config.data.role_sentence_view:
        texts += list(ds["text"])
        gold += list(ds["label"])
    if config.data.role_title_claims:

        titles = {c.title.strip() for c in load_database_csv(config.data.database_csv)
                  if c.published is not None and c.published.isoformat() < before and c.title.strip()}
        texts += sorted(titles)
        gold += [ROLE_LABELS.index("claim")] * len(titles)
    if config.data.role_realtext_units:
        real = load_realtext(kinds={"claim", "debunk"}, splits={"train"})
        known = sorted({rec["unit"] for rec in real})
        unknown = [unit for unit in config.data.role_realtext_units if unit not in known]
        if unknown:
            raise ConfigError(f"data.role_realtext_units: the real-text corpus has no training claims or debunks of "
                              f"unit {unknown[0]!r}; choose among {', '.join(known)}")
        # Each record as the windows predict reads it, every window with the record's role.
        for rec in (r for r in real if r["unit"] in config.data.role_realtext_units):
            windows = [rec["text"][s:e] for s, e in text_windows(rec["text"])]
            texts += windows
            gold += [ROLE_LABELS.index(rec["kind"])] * len(windows)
    return SplitData(texts=texts, gold=np.asarray(gold, dtype=np.int64), languages=[""] * len(texts))


def check_label_set(labels: list[str], train: SplitData, multi_label: bool, where: str) -> None:
    """Refuse a label set the training data cannot support, saying how to fix it."""
    counts = train.gold.sum(axis=0) if multi_label else np.bincount(train.gold, minlength=len(labels))
    missing = [lab for lab, c in zip(labels, counts) if c == 0]
    if missing:
        raise ConfigError(
            f"{where}: label(s) {', '.join(missing)} have no training examples; remove them from the "
            "taxonomy, widen their keywords/cues, or train on data that contains them"
        )


def _fit_backend(config: TrainingConfig, labels: list[str], problem_type: str, splits: dict[str, SplitData],
                 label_names: dict[str, str], output_dir: Path, taxonomy: Taxonomy) -> TextClassifier:
    train = splits["train"]
    task = config.task
    if config.backend == "linear":

        return LinearClassifier.fit(
            train.texts, train.gold, labels=labels, problem_type=problem_type, config=config.linear,
            seed=config.seed, label_names=label_names, task=task,
            cues={n.id: list(n.cues) for n in taxonomy.narratives} if task == "narrative" else None,
        )
    if config.backend == "combined":
        return fit_combined_model(config, labels, problem_type, splits, label_names, output_dir)
    if config.backend == "embedding-head":

        return EmbeddingHeadClassifier.fit_texts(
            train.texts, train.gold, labels=labels, problem_type=problem_type, config=config.head, seed=config.seed,
            label_names=label_names, task=task,
        )
    from datasets import Dataset

    def to_ds(split: SplitData) -> Dataset:
        targets = split.gold.astype(np.float32).tolist() if problem_type == MULTI_LABEL else split.gold.tolist()
        return Dataset.from_dict({"text": split.texts, "labels": targets})

    return EncoderClassifier.train(
        to_ds(train), to_ds(splits["validation"]), labels=labels, problem_type=problem_type, config=config.encoder,
        seed=config.seed, output_dir=output_dir, label_names=label_names, task=task,
    )


def train(config: TrainingConfig, output_dir: str | Path | None = None, config_path: str | None = None,
          overwrite: bool = False) -> TrainResult:
    """Train, calibrate, tune thresholds, save, evaluate on validation and test, and write the card.

    The directory is built beside ``output_dir`` and moved into place once complete; an existing,
    non-empty ``output_dir`` is refused unless ``overwrite``.
    """
    started = time.perf_counter()
    set_seed(config.seed)
    out = Path(output_dir or config.output_dir)
    check_output_dir(out, overwrite)  # before minutes of work, not after
    config.output_dir = str(out)
    logger.info("loading the %s data", config.task)
    taxonomy = load_taxonomy(config.data.taxonomy)
    labels, problem_type = _labels(config, taxonomy)
    multi = problem_type == MULTI_LABEL
    report: list[SplitReport] = []
    splits = load_splits(config, taxonomy, report)
    check_label_set(labels, splits["train"], multi, config_path or "config")
    label_names = {n.id: n.name for n in taxonomy.narratives} if multi else {lab: lab for lab in labels}
    logger.info("splits by time: %s", ", ".join(f"{name} {len(data.texts):,}" for name, data in splits.items()))

    with staged_output(out, overwrite) as work:
        logger.info("training %s/%s on %d texts", config.task, config.backend, len(splits["train"].texts))
        model = _fit_backend(config, labels, problem_type, splits, label_names, work, taxonomy)

        val = splits["validation"]
        logger.info("calibrating (%s) on %d validation texts", config.calibration, len(val.texts))
        logits = model.decision_function(val.texts)
        model.meta.calibration = fit_calibration(logits, val.gold, config.calibration, problem_type)
        if config.backend == "combined":
            pass  # the combined fit tuned its thresholds on the multilingual validation data
        elif multi and config.tune_thresholds:
            model.meta.thresholds = tune_thresholds(apply_calibration(logits, model.meta.calibration, problem_type), val.gold)
        elif multi:
            model.meta.thresholds = [0.5] * len(labels)
        model.meta.model_id = f"{out.name}@{__version__}"
        model.meta.library_version = __version__
        model.save_pretrained(work)
        (work / TRAINING_CONFIG_FILE).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
        if multi and config.bundle_role_model and Path(ROLE_MODEL_DIR, META_FILE).is_file():
            shutil.copytree(ROLE_MODEL_DIR, work / "role", dirs_exist_ok=True)

        logger.info("evaluating on validation and test")
        metrics = evaluate_dir(work, splits=splits, report=report[0] if report else None, config_file=config_path)
        if config.refit_on_all_data:
            metrics = _refit_on_all(config, model, labels, problem_type, splits, label_names, work, taxonomy, metrics)
        if config.backend == "combined":
            metrics["compared"] = compared(config, metrics)
            save_metrics(metrics, work / METRICS_FILE)
            (work / CARD_FILE).write_text(render_card(work), encoding="utf-8")
        if config.backend == "combined" and any(p.release_path for p in config.combined.parts):
            metrics = point_at_release_parts(config, model, work, metrics)
    logger.info("model written to %s in %.0f s", out, time.perf_counter() - started)
    return TrainResult(model_dir=out, metrics=metrics)


def _refit_on_all(config: TrainingConfig, model: TextClassifier, labels: list[str], problem_type: str,
                  splits: dict[str, SplitData], label_names: dict[str, str], out: Path, taxonomy: Taxonomy,
                  metrics: dict[str, Any]) -> dict[str, Any]:
    """Refit on train + validation + test with the time-split model's calibration and thresholds."""
    if config.backend not in ("linear", "embedding-head"):
        raise ConfigError("refit_on_all_data is only supported for the linear and embedding-head backends "
                          "(the encoder needs validation for early stopping; a combined model mixes refit parts)")
    names = ("train", "validation", "test")
    merged = SplitData(
        texts=[t for n in names for t in splits[n].texts],
        gold=np.concatenate([splits[n].gold for n in names]),
        languages=[lang for n in names for lang in splits[n].languages],
    )
    logger.info("refitting on all %d texts", len(merged.texts))
    refit = _fit_backend(config, labels, problem_type, {"train": merged}, label_names, out, taxonomy)
    refit.meta.calibration, refit.meta.thresholds = model.meta.calibration, model.meta.thresholds
    refit.meta.model_id, refit.meta.library_version = model.meta.model_id, model.meta.library_version
    model.save_pretrained(out / TIME_SPLIT_DIR)  # kept, so that `evaluate` can measure the held-out numbers again
    refit.save_pretrained(out)
    metrics["refit"] = {
        "examples": len(merged.texts),
        "through": (metrics.get("data") or {}).get("boundaries", {}).get("test", ["", ""])[1],
        "note": "weights refit on all periods after the held-out evaluation; the split metrics are those of the time-split model",
        "time_split_model": TIME_SPLIT_DIR,
    }
    save_metrics(metrics, out / METRICS_FILE)
    (out / CARD_FILE).write_text(render_card(out), encoding="utf-8")
    return metrics


def evaluate_dir(
    model_dir: str | Path,
    split: str | None = None,
    splits: dict[str, SplitData] | None = None,
    report: SplitReport | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Evaluate a model directory on validation and test (or one ``split``) of the data it was trained
    on, and write ``metrics.json``, plots and the model card into the directory.

    A directory refit on all periods (``refit_on_all_data``) has every split in its training data:
    its held-out numbers are those of the time-split model, which training keeps in
    ``DIR/time-split`` and which is what gets evaluated. Without that copy (the shipped model) the
    refit model itself is evaluated, in-sample: the numbers are returned (``in_sample``) but
    nothing is written, so the card keeps its held-out numbers. ``metrics["_note"]`` says which.
    """

    model_dir = Path(model_dir)
    config = load_config(model_dir / TRAINING_CONFIG_FILE) if (model_dir / TRAINING_CONFIG_FILE).is_file() else TrainingConfig()
    evaluated, note = model_dir, ""
    if config.refit_on_all_data and splits is None:
        if Path(model_dir, TIME_SPLIT_DIR, META_FILE).is_file():
            evaluated = model_dir / TIME_SPLIT_DIR
            note = (f"{model_dir} was refit on all periods; these are the held-out numbers of the time-split model it "
                    f"was refit from ({evaluated}), which metrics.json and the card report")
        else:
            return _evaluate_in_sample(model_dir, config, split)
    model = load_classifier(evaluated)
    if hasattr(model, "cache"):  # embedding heads: evaluation embeds the same texts as training did

        model.cache = EmbeddingCache()
    if splits is None:
        reports: list[SplitReport] = []
        splits = load_splits(config, load_taxonomy(config.data.taxonomy), reports)
        report = reports[0] if reports else None
    wanted = [split] if split else ["validation", "test"]
    unknown = [s for s in wanted if s not in splits]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: use one of {', '.join(splits)}")
    previous = json.loads((model_dir / METRICS_FILE).read_text(encoding="utf-8")) if (model_dir / METRICS_FILE).is_file() else {}
    metrics: dict[str, Any] = {
        **previous,
        "model_id": model.meta.model_id,
        "task": model.meta.task,
        "backend": model.meta.backend,
        "splits": dict(previous.get("splits", {})),
    }
    if config_file:
        metrics["config_file"] = config_file
    if report is not None:
        metrics["data"] = {"boundaries": report.boundaries, "sizes": report.sizes, "label_counts": report.label_counts}
    for name in wanted:
        result = evaluate_split(model, splits[name], splits["train"].gold)
        probs = result.pop("_probs")
        write_plots(result, probs, splits[name].gold, model_dir, name)
        metrics["splits"][name] = result
    if split is None:

        metrics["translated"] = evaluate_translated(model)
    save_metrics(metrics, model_dir / METRICS_FILE)
    (model_dir / CARD_FILE).write_text(render_card(model_dir), encoding="utf-8")
    return {**metrics, "_note": note} if note else metrics


def _evaluate_in_sample(model_dir: Path, config: TrainingConfig, split: str | None) -> dict[str, Any]:
    """The refit model on the time splits, all of which it was trained on: returned, not written."""
    splits = load_splits(config, load_taxonomy(config.data.taxonomy))
    wanted = [split] if split else ["validation", "test"]
    if any(name not in splits for name in wanted):
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(splits)}")
    model = load_classifier(model_dir)
    results = {name: evaluate_split(model, splits[name], splits["train"].gold) for name in wanted}
    for result in results.values():
        result.pop("_probs")
    return {
        "model_id": model.meta.model_id, "task": model.meta.task, "backend": model.meta.backend,
        "in_sample": True, "splits": results,
        "_note": (f"IN-SAMPLE: {model_dir} was refit on all periods, so every split below is in its training data and "
                  f"these numbers overstate how it does on new text. Its held-out numbers are in "
                  f"{model_dir / METRICS_FILE} (left unchanged); models trained now keep their time-split model in "
                  f"DIR/{TIME_SPLIT_DIR}, and evaluating them measures that one."),
    }
