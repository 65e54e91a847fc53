"""The one interface every backend answers, and the model-directory conventions.

A model directory follows ``save_pretrained``/``from_pretrained``:

- ``config.json``: ``id2label``, ``label2id``, ``problem_type`` (for the encoder, the full
  transformers config, so ``transformers.pipeline("text-classification", model=DIR)`` works);
- ``disinfo_clf.json``: what this library adds (:class:`ModelMeta`): backend, task, label
  names, per-label thresholds, calibration parameters;
- weights as safetensors (``model.safetensors`` for the encoder, ``adapter_model.safetensors`` for
  LoRA adapters with ``base_encoder.json`` naming their base, ``linear.safetensors`` plus
  ``vocabulary.json`` for the linear model); never pickles;
- optionally ``training_config.yaml``, ``metrics.json`` and a ``README.md`` model card.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import ModelDirectoryError
from .folder_checks import MULTI_LABEL, SINGLE_LABEL, check_meta

META_FILE = "disinfo_clf.json"
CONFIG_FILE = "config.json"
ProblemType = Literal["multi_label_classification", "single_label_classification"]


@dataclass
class ModelMeta:
    """What ``disinfo_clf.json`` holds beside the transformers-style ``config.json``."""

    backend: Literal["linear", "encoder", "encoder-lora", "embedding-head", "combined"]
    task: Literal["narrative", "role"]
    labels: list[str]
    problem_type: ProblemType
    label_names: dict[str, str] = field(default_factory=dict)
    """Human-readable name per label id (narrative names from the taxonomy)."""
    thresholds: list[float] = field(default_factory=list)
    """Decision threshold per label on calibrated probabilities (multi-label); empty means 0.5."""
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none"})
    """``{"method": "temperature", "temperature": T}`` or ``{"method": "platt", "a": [...], "b": [...]}``."""
    max_length: int | None = None
    """Encoder token window; ``None`` for the linear backend."""
    model_id: str = ""
    """A short identifier written into scoring output (for example ``narratives-linear@0.1.0``)."""
    library_version: str = ""

    @property
    def decision_thresholds(self) -> list[float]:
        """The threshold of every label: the tuned ones, else 0.5 each."""
        return list(self.thresholds) or [0.5] * len(self.labels)

    def save(self, directory: str | Path) -> None:
        """Write ``disinfo_clf.json`` into ``directory``."""
        Path(directory, META_FILE).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "ModelMeta":
        """Read ``disinfo_clf.json`` from ``directory``, naming the file on any problem."""
        path = Path(directory, META_FILE)
        if not Path(directory).is_dir():
            raise ModelDirectoryError(f"model directory {directory} does not exist")
        if not path.is_file():
            raise ModelDirectoryError(
                f"{path} is missing: {directory} is not a disinfo_clf model directory "
                "(train one with `disinfo-clf train` or pass the directory it wrote)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc
        check_meta(data, path, cls)  # a directory can come from anyone: only allowed keys and values
        return cls(**data)


@runtime_checkable
class TextClassifier(Protocol):
    """What ``predict``, ``evaluate`` and ``score`` need from a backend, whichever it is."""

    meta: ModelMeta

    @property
    def labels(self) -> list[str]:
        """Label ids, in the column order of :meth:`predict_proba`."""
        ...

    def decision_function(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Raw, uncalibrated logits, shape ``(len(texts), len(labels))``."""
        ...

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(labels))``: the logits passed
        through ``calibration.apply_calibration(logits, meta.calibration, meta.problem_type)``."""
        ...

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the model directory (config, meta, weights)."""
        ...


def progress_disabled(show_progress_bar: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``show_progress_bar`` argument: ``None`` shows a bar only on a terminal."""
    return None if show_progress_bar is None else not show_progress_bar


def write_hf_config(directory: str | Path, meta: ModelMeta, extra: dict[str, Any] | None = None) -> None:
    """Write a transformers-style ``config.json`` with ``id2label``/``label2id``/``problem_type``."""
    config = dict(extra or {})
    config["id2label"] = {str(i): label for i, label in enumerate(meta.labels)}
    config["label2id"] = {label: i for i, label in enumerate(meta.labels)}
    config["problem_type"] = meta.problem_type
    Path(directory, CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def require_files(directory: str | Path, names: Sequence[str]) -> None:
    """Raise :class:`ModelDirectoryError` naming the first missing file of a model directory."""
    for name in names:
        if not Path(directory, name).is_file():
            raise ModelDirectoryError(f"{Path(directory, name)} is missing: the model directory is incomplete")
