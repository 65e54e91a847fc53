"""The translated evaluation sets: EUvsDisinfo claims and debunks rendered in other languages.

``resources/data/multilingual/claims_dev.jsonl`` holds claims of the validation period and
debunk sentences of the role data's validation period, ``claims_test.jsonl`` those of the test
periods, each in English and in translation (see ``PROVENANCE.md`` there for how they were made).
Dev is for choosing and tuning models; test is only ever reported.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .evaluation import SplitData, multilabel_metrics, singlelabel_metrics
from ..resources import DATA_DIR
from ..models.meta import MULTI_LABEL
from ..prediction import predict

MULTILINGUAL_DIR = DATA_DIR / "multilingual"
TranslatedSplit = Literal["dev", "test"]


@dataclass(frozen=True)
class TranslatedItem:
    """One line of a translated set."""

    id: str
    lang: str
    role: str
    text: str
    en: str
    narratives: tuple[str, ...]
    case_id: str
    date: str


def translated_path(split: TranslatedSplit) -> Path:
    """The shipped file of a translated split."""
    return MULTILINGUAL_DIR / f"claims_{split}.jsonl"


def load_translated(split: TranslatedSplit, path: str | Path | None = None) -> list[TranslatedItem]:
    """Every line of a translated split; a broken line raises ValueError naming file and line."""
    path = Path(path) if path is not None else translated_path(split)
    items = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(TranslatedItem(
                    id=str(row["id"]), lang=str(row["lang"]), role=str(row["role"]), text=str(row["text"]),
                    en=str(row.get("en", "")), narratives=tuple(row.get("narratives") or ()),
                    case_id=str(row.get("case_id", "")), date=str(row.get("date", "")),
                ))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}, line {number}: {exc!r}; each line needs id, lang, role and text") from exc
    return items


def narrative_split(items: Sequence[TranslatedItem], labels: Sequence[str]) -> SplitData:
    """The claims of a translated set as narrative-task data (texts, multi-hot gold, languages)."""
    claims = [it for it in items if it.role == "claim"]
    index = {lab: j for j, lab in enumerate(labels)}
    gold = np.zeros((len(claims), len(labels)), dtype=np.int64)
    for i, it in enumerate(claims):
        for lab in it.narratives:
            if lab in index:
                gold[i, index[lab]] = 1
    return SplitData(texts=[it.text for it in claims], gold=gold, languages=[it.lang for it in claims])


def role_split(items: Sequence[TranslatedItem], labels: Sequence[str] = ("claim", "debunk")) -> SplitData:
    """Claims and debunks of a translated set as role-task data (gold class ids)."""
    kept = [it for it in items if it.role in labels]
    gold = np.asarray([list(labels).index(it.role) for it in kept], dtype=np.int64)
    return SplitData(texts=[it.text for it in kept], gold=gold, languages=[it.lang for it in kept])


def per_language(data: SplitData, probs: np.ndarray, *, labels: Sequence[str], thresholds: Sequence[float] | None,
                 multi_label: bool) -> dict[str, Any]:
    """Metrics per language of a translated set (top-1 hit and F1s, or accuracy), plus ``all``."""
    langs = np.asarray(data.languages)
    out: dict[str, Any] = {}
    for lang in ["all", *sorted(set(data.languages), key=lambda x: (x != "en", x))]:
        mask = np.ones(len(langs), dtype=bool) if lang == "all" else langs == lang
        if multi_label:
            metrics = multilabel_metrics(data.gold[mask], probs[mask], thresholds or [0.5] * len(labels), labels)
        else:
            metrics = singlelabel_metrics(data.gold[mask], probs[mask], labels)
        out[lang] = {k: v for k, v in metrics.items() if k != "per_label"}
    return out


def evaluate_translated(model: Any, splits: Sequence[TranslatedSplit] = ("dev", "test"),
                        batch_size: int = 64) -> dict[str, Any]:
    """Per-language metrics of a narrative or role classifier on the shipped translated sets
    (only the splits whose file exists)."""

    multi = model.meta.problem_type == MULTI_LABEL
    labels = list(model.labels)
    out: dict[str, Any] = {}
    for split in splits:
        if not translated_path(split).is_file():
            continue
        items = load_translated(split)
        data = narrative_split(items, labels) if multi else role_split(items, labels)
        if not data.texts:
            continue
        probs = np.asarray(model.predict_proba(data.texts, batch_size=batch_size), dtype=np.float64)
        out[split] = per_language(data, probs, labels=labels, thresholds=model.meta.decision_thresholds if multi else None,
                                  multi_label=multi)
    return out


def predict_role_accuracy(model: Any, splits: Sequence[TranslatedSplit] = ("dev", "test")) -> dict[str, Any]:
    """Per-language accuracy of ``Prediction.role`` (what a user reads: the role model with the
    debunk-wording cues, over sentence windows) for a :class:`disinfo_clf.prediction.Model`."""

    out: dict[str, Any] = {}
    for split in splits:
        if not translated_path(split).is_file():
            continue
        items = [it for it in load_translated(split) if it.role in ("claim", "debunk")]
        predictions = predict([it.text for it in items], model=model)
        by_lang: dict[str, list[bool]] = {}
        for it, p in zip(items, predictions):
            for key in (it.lang, "all"):
                by_lang.setdefault(key, []).append(p.role == it.role)
        out[split] = {lang: {"n": len(v), "accuracy": float(np.mean(v))} for lang, v in sorted(
            by_lang.items(), key=lambda kv: (kv[0] == "all", kv[0] != "en", kv[0]))}
    return out
