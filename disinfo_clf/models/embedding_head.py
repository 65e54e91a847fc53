"""The frozen-encoder backend: a logistic-regression head on sentence embeddings of a pretrained encoder.

The encoder (multilingual-e5-small by default) is not part of the directory: ``encoder.json``
names it (Hub id or local directory), the sha256 of the weights the head was fitted on, the
inference backend and the prefix, and :func:`disinfo_clf.encoders.load_encoder` supplies it, so
the directory holds only the head: ``head.safetensors`` (``coef`` labels x dim, ``intercept``).
Embeddings are mean-pooled, L2-normalised and read with the encoder's ``query`` prompt (from its
``config_sentence_transformers.json``; E5's ``"query: "``, the form its card prescribes for
classification and symmetric similarity), recorded in ``encoder.json`` when the head is fitted.

Logits are ``E @ coef.T + intercept``, with the same column conventions as the linear backend.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .meta import CONFIG_FILE, META_FILE, MULTI_LABEL, ModelDirectoryError, ModelMeta, ProblemType, require_files, write_hf_config
from .calibration import CalibratedClassifier
from ..encoders.cache import EmbeddingCache
from .linear import fit_logistic_heads
from ..encoders.inference import shared_encoder
from .calibration import apply_calibration
from .folder_checks import check_finite

if TYPE_CHECKING:
    from ..config import HeadConfig
    from ..encoders.base import Encoder

logger = logging.getLogger(__name__)

MODEL_TYPE = "disinfo-embedding-head"
HEAD_FILE = "head.safetensors"
ENCODER_FILE = "encoder.json"


@dataclass(frozen=True)
class EncoderSpec:
    """Which encoder a head reads, as ``encoder.json`` records it."""

    name_or_path: str
    """Hub id or local directory, resolved by :func:`disinfo_clf.encoders.resolve_encoder`."""
    fingerprint: str = ""
    """sha256 of the weights the head was fitted on (empty: unknown); a mismatch is logged."""
    backend: str = "auto"
    """Inference backend passed to :func:`disinfo_clf.encoders.load_encoder`."""
    prefix: str | None = None
    """Text prefix of every input, as the head was fitted; ``None``: the encoder's ``query`` prompt
    (from its ``config_sentence_transformers.json``)."""

    @classmethod
    def load(cls, directory: str | Path) -> "EncoderSpec":
        """Read ``encoder.json``, naming the file on any problem."""
        path = Path(directory, ENCODER_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("name_or_path"), str):
                raise ValueError("needs a string field 'name_or_path'")
            unknown = set(data) - {"name_or_path", "fingerprint", "backend", "prefix"}
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            if not all(isinstance(v, str) for k, v in data.items() if not (k == "prefix" and v is None)):
                raise ValueError("every field must be a string")
            return cls(**data)
        except FileNotFoundError as exc:
            raise ModelDirectoryError(f"{path} is missing: the model directory does not say which encoder it reads") from exc
        except ValueError as exc:
            raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc

    def save(self, directory: str | Path) -> None:
        """Write ``encoder.json`` into ``directory``."""
        Path(directory, ENCODER_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def encoder_for(spec: EncoderSpec) -> "Encoder":
    """The process-wide encoder a spec names (loaded once), warning when its weights differ."""
    encoder = shared_encoder(spec.name_or_path, backend=spec.backend)
    if spec.fingerprint and encoder.fingerprint and encoder.fingerprint != spec.fingerprint:
        logger.warning(
            "encoder %s has weights %s…, but the head was fitted on %s…: scores may differ from the model card's",
            spec.name_or_path, encoder.fingerprint[:12], spec.fingerprint[:12],
        )
    return encoder


class EmbeddingHeadClassifier(CalibratedClassifier):
    """A linear head on frozen sentence embeddings, answering the ``TextClassifier`` protocol."""

    def __init__(self, meta: ModelMeta, coef: np.ndarray, intercept: np.ndarray, encoder: EncoderSpec) -> None:
        self.meta = meta
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.encoder_spec = encoder
        self.cache: EmbeddingCache | None = None
        """Embeddings kept across calls (training and evaluation set it; prediction does not)."""

    @property
    def labels(self) -> list[str]:
        """Label ids, in the column order of :meth:`predict_proba`."""
        return list(self.meta.labels)

    def embed(self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray:
        """Sentence embeddings of ``texts``, shape ``(len(texts), dim)``."""
        encoder = encoder_for(self.encoder_spec)
        prefix = encoder.resolve_prefix(self.encoder_spec.prefix)
        if self.cache is not None:
            return self.cache.embed(encoder, texts, prefix=prefix, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return encoder.embed(list(texts), prefix=prefix, batch_size=batch_size, show_progress_bar=show_progress_bar)

    def decision_function(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None,
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw logits; ``embeddings`` of the texts from this head's encoder skip the encoder."""
        if embeddings is None:
            embeddings = self.embed(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return self.logits(embeddings)

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None,
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities; ``embeddings`` of the texts skip the encoder."""

        logits = self.decision_function(texts, batch_size=batch_size, show_progress_bar=show_progress_bar, embeddings=embeddings)
        return apply_calibration(logits, self.meta.calibration, self.meta.problem_type)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Raw logits of precomputed embeddings."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.coef.shape[1]:
            raise ValueError(f"embeddings must have shape (n, {self.coef.shape[1]}), got {embeddings.shape}")
        # Row by row: a matrix product sums in a different order for different row counts, and a text's
        # scores must not depend on the texts it is batched with (the HTTP server batches requests).
        logits = np.empty((embeddings.shape[0], self.coef.shape[0]), dtype=np.float32)
        for i, row in enumerate(embeddings):
            logits[i] = self.coef @ row
        return logits + self.intercept

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        targets: np.ndarray,
        *,
        labels: Sequence[str],
        problem_type: ProblemType,
        config: "HeadConfig",
        seed: int,
        encoder: EncoderSpec,
        label_names: dict[str, str] | None = None,
        task: str = "narrative",
    ) -> "EmbeddingHeadClassifier":
        """Fit the head on embeddings of the training texts."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        coef, intercept = fit_logistic_heads(
            embeddings, targets, labels=list(labels), problem_type=problem_type, C=config.C,
            class_weight=config.class_weight, max_iter=config.max_iter, seed=seed,
        )
        meta = ModelMeta(backend="embedding-head", task=task, labels=list(labels), problem_type=problem_type,
                         label_names=dict(label_names or {}))
        return cls(meta, coef, intercept, encoder)

    @classmethod
    def fit_texts(
        cls,
        texts: Sequence[str],
        targets: np.ndarray,
        *,
        labels: Sequence[str],
        problem_type: ProblemType,
        config: "HeadConfig",
        seed: int,
        label_names: dict[str, str] | None = None,
        task: str = "narrative",
    ) -> "EmbeddingHeadClassifier":
        """Embed ``texts`` with the configured encoder and fit the head; the model keeps the
        embedding cache (when configured) so that calibration and evaluation reuse it."""
        spec = EncoderSpec(config.model_name_or_path, backend=config.backend)
        encoder = encoder_for(spec)
        spec = EncoderSpec(spec.name_or_path, encoder.fingerprint, spec.backend,
                           encoder.resolve_prefix(config.prefix, config.prompt_name))
        cache = EmbeddingCache() if config.cache_embeddings else None
        logger.info("embedding %d training texts with %s", len(texts), spec.name_or_path)
        if cache is not None:
            embeddings = cache.embed(encoder, texts, prefix=spec.prefix, batch_size=config.batch_size)
        else:
            embeddings = encoder.embed(list(texts), prefix=spec.prefix, batch_size=config.batch_size)
        model = cls.fit(embeddings, targets, labels=labels, problem_type=problem_type, config=config, seed=seed,
                        encoder=spec, label_names=label_names, task=task)
        model.cache = cache
        return model

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json, disinfo_clf.json, encoder.json and head.safetensors."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_hf_config(directory, self.meta, {"model_type": MODEL_TYPE, "hidden_size": int(self.coef.shape[1])})
        self.meta.save(directory)
        self.encoder_spec.save(directory)
        save_file({"coef": self.coef, "intercept": self.intercept}, str(directory / HEAD_FILE),
                  metadata={"format": "np", "model_type": MODEL_TYPE})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "EmbeddingHeadClassifier":
        """Load a directory written by :meth:`save_pretrained` (the encoder loads on first use)."""
        directory = Path(directory)
        require_files(directory, [CONFIG_FILE, META_FILE, ENCODER_FILE, HEAD_FILE])
        meta = ModelMeta.load(directory)
        spec = EncoderSpec.load(directory)
        try:
            tensors = load_file(str(directory / HEAD_FILE))
        except (SafetensorError, OSError) as exc:
            raise ModelDirectoryError(f"{directory / HEAD_FILE} is corrupt ({exc}): retrain or restore the directory") from exc
        coef, intercept = tensors.get("coef"), tensors.get("intercept")
        n = len(meta.labels)
        if coef is None or intercept is None or coef.ndim != 2 or coef.shape[0] != n or intercept.shape != (n,):
            raise ModelDirectoryError(
                f"{directory / HEAD_FILE} does not hold a head for the {n} labels of {directory / META_FILE}"
            )
        check_finite(coef, directory / HEAD_FILE, "coef")
        check_finite(intercept, directory / HEAD_FILE, "intercept")
        if meta.problem_type == MULTI_LABEL and meta.thresholds and len(meta.thresholds) != n:
            raise ModelDirectoryError(f"{directory / META_FILE}: {len(meta.thresholds)} thresholds for {n} labels")
        return cls(meta, coef, intercept, spec)


def embeddings_of(model: Any) -> tuple[EncoderSpec, ...]:
    """The encoders a loaded classifier reads (none for a purely lexical model)."""
    spec = getattr(model, "encoder_spec", None)
    if isinstance(spec, EncoderSpec):
        return (spec,)
    return tuple(s for part in getattr(model, "parts", ()) for s in embeddings_of(part))
