"""The encoder backend: a Hugging Face encoder fine-tuned with the ``transformers`` Trainer.

Training truncates texts at ``max_length`` tokens; prediction never cuts: a longer text is
split into overlapping token windows whose logits are pooled per text (max for multi-label,
mean for single-label). Calibration and thresholds are fitted by the caller on validation
logits and stored with :meth:`EncoderClassifier.set_calibration` and
:meth:`EncoderClassifier.set_thresholds` (both only update ``meta``).
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .meta import CONFIG_FILE, MULTI_LABEL, ModelDirectoryError, ModelMeta, ProblemType, progress_disabled, require_files
from .calibration import CalibratedClassifier
from .registry import backend_class
from .encoder_loading import LOADING_ADVICE, TRAINING_ADVICE, load_pretrained_encoder, quiet_progress_bars  # noqa: F401
from .. import __version__

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..config import EncoderConfig

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
MAX_CLASS_WEIGHT = 20.0
"""Upper bound on a label's loss weight, so that a label seen a handful of times cannot dominate."""
CHECKPOINTS = "checkpoints"


def window_stride(max_length: int) -> int:
    """Tokens shared by consecutive windows of a long text: a quarter of the window."""
    return max(max_length // 4, 1)


def _limit_threads() -> None:
    """Keep torch's CPU threads within the cores this process may actually use."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:
        torch.set_num_threads(available)


class EncoderClassifier(CalibratedClassifier):
    """A fine-tuned transformer encoder answering the :class:`~.base.TextClassifier` calls."""

    def __init__(self, model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", meta: ModelMeta) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self._writes_files = True
        """False on the non-main processes of a distributed run, which must not write."""

    @property
    def labels(self) -> list[str]:
        """Label ids, in the column order of :meth:`predict_proba`."""
        return list(self.meta.labels)

    def set_calibration(self, params: dict[str, Any]) -> None:
        """Store calibration parameters from ``calibration.fit_calibration``."""
        self.meta.calibration = dict(params)

    def set_thresholds(self, thresholds: Sequence[float]) -> None:
        """Store one decision threshold per label (on calibrated probabilities)."""
        if len(thresholds) != len(self.meta.labels):
            raise ValueError(f"expected {len(self.meta.labels)} thresholds, one per label, got {len(thresholds)}")
        self.meta.thresholds = [float(t) for t in thresholds]

    # ---- prediction -------------------------------------------------------------------------

    def decision_function(
        self, texts: Sequence[str], batch_size: int = 64, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Raw, uncalibrated logits, shape ``(len(texts), len(labels))``; long texts are windowed."""
        texts = list(texts)
        n_labels = len(self.meta.labels)
        if not texts:
            return np.zeros((0, n_labels), dtype=np.float32)
        _limit_threads()
        max_length = self.meta.max_length or self.tokenizer.model_max_length
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=max_length,
            stride=window_stride(max_length),
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids: list[list[int]] = encoded["input_ids"]
        owner = np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        # Windows of similar length share a batch, so hardly any padding is computed.
        order = np.argsort(-lengths, kind="stable")
        pad_id = self.tokenizer.pad_token_id or 0
        device = next(self.model.parameters()).device
        window_logits = np.empty((len(ids), n_labels), dtype=np.float32)
        self.model.eval()
        starts = range(0, len(order), batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="encoder", unit="batch", disable=progress_disabled(show_progress_bar)):
                rows = order[start:start + batch_size]
                width = int(lengths[rows[0]])
                batch = np.full((len(rows), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for i, row in enumerate(rows):
                    batch[i, : lengths[row]] = ids[row]
                    mask[i, : lengths[row]] = 1
                logits = self.model(
                    input_ids=torch.from_numpy(batch).to(device), attention_mask=torch.from_numpy(mask).to(device)
                ).logits
                window_logits[rows] = logits.float().cpu().numpy()
        return _pool_windows(window_logits, owner, len(texts), self.meta.problem_type)

    # ---- persistence ------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> None:
        """Write weights (safetensors), tokenizer, ``config.json`` and ``disinfo_clf.json``.

        The directory also loads with ``transformers.pipeline("text-classification", model=DIR)``.
        Does nothing on the non-main processes of a distributed training run.
        """
        if not self._writes_files:
            return
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        self.meta.save(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | None = None) -> "EncoderClassifier":
        """Load a model directory written by :meth:`save_pretrained` (local files only).

        ``device`` defaults to the GPU when there is one, else the CPU.
        """
        meta = ModelMeta.load(directory)
        require_files(directory, [CONFIG_FILE, WEIGHTS_FILE])
        tokenizer, model = load_pretrained_encoder(str(directory), local_files_only=True, advice=LOADING_ADVICE)
        config_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if config_labels != list(meta.labels):
            raise ModelDirectoryError(
                f"{Path(directory, CONFIG_FILE)}: id2label {config_labels} does not match the labels "
                f"in {Path(directory, 'disinfo_clf.json')} ({meta.labels}); the directory is corrupt"
            )
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model.eval()
        return cls(model, tokenizer, meta)

    # ---- training ---------------------------------------------------------------------------

    @classmethod
    def _training_model(cls, config: "EncoderConfig", labels: list[str],
                        problem_type: ProblemType) -> tuple["PreTrainedTokenizerBase", "PreTrainedModel"]:
        """The tokenizer and the model to train: the pretrained encoder with a fresh head for ``labels``."""
        return load_pretrained_encoder(config.model_name_or_path, local_files_only=config.local_files_only,
                                       labels=labels, problem_type=problem_type)

    @classmethod
    def train(
        cls,
        train: "datasets.Dataset",
        validation: "datasets.Dataset",
        *,
        labels: Sequence[str],
        problem_type: ProblemType,
        config: "EncoderConfig",
        seed: int,
        output_dir: str | Path,
        label_names: dict[str, str] | None = None,
        task: str = "narrative",
    ) -> "EncoderClassifier":
        """Fine-tune ``config.model_name_or_path`` on ``train`` (columns ``text`` and ``labels``:
        a multi-hot list for multi-label, a class index for single-label), stopping early on
        validation macro-F1 and keeping the best checkpoint.

        Checkpoints go to ``output_dir/checkpoints`` and are removed at the end; the caller
        saves the returned model with :meth:`save_pretrained`. Runs unchanged under
        ``accelerate launch``/``torchrun``.
        """
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, TrainingArguments, set_seed

        for name, dataset in (("train", train), ("validation", validation)):
            missing = {"text", "labels"} - set(dataset.column_names)
            if missing:
                raise ValueError(f"the {name} dataset lacks column(s) {sorted(missing)}; it needs 'text' and 'labels'")
        set_seed(seed)
        if config.lora_r and cls is EncoderClassifier:  # adapters only, on a frozen base: models/lora.py
            return backend_class("encoder-lora").train(train, validation, labels=labels, problem_type=problem_type,
                                                      config=config, seed=seed, output_dir=output_dir,
                                                      label_names=label_names, task=task)
        if config.train_subset and config.train_subset < len(train):  # evenly over time: the data is time-ordered
            train = train.select(np.linspace(0, len(train), config.train_subset, endpoint=False).astype(np.int64).tolist())
        tokenizer, model = cls._training_model(config, list(labels), problem_type)

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            return tokenizer(batch["text"], truncation=True, max_length=config.max_length)

        def prepare(dataset: "datasets.Dataset") -> "datasets.Dataset":
            drop = [c for c in dataset.column_names if c != "labels"]
            return dataset.map(tokenize, batched=True, remove_columns=drop, desc="tokenizing")

        quiet_progress_bars()
        train_set, validation_set = prepare(train), prepare(validation)
        strategy = "steps" if config.eval_steps else "epoch"
        checkpoints = Path(output_dir, CHECKPOINTS)
        args = TrainingArguments(
            output_dir=str(checkpoints),
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio
            num_train_epochs=config.num_train_epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.per_device_train_batch_size,
            per_device_eval_batch_size=config.per_device_eval_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            eval_strategy=strategy, eval_steps=config.eval_steps,
            save_strategy=strategy, save_steps=config.eval_steps or 500, save_total_limit=2, save_only_model=True,
            logging_strategy=strategy, logging_steps=config.eval_steps or 500,
            load_best_model_at_end=True, metric_for_best_model="macro_f1", greater_is_better=True,
            seed=seed, data_seed=seed,
            use_cpu=config.use_cpu,
            dataloader_num_workers=config.dataloader_num_workers,
            report_to="none",
            disable_tqdm=not sys.stderr.isatty(),
            **_precision_flags(config.precision, config.use_cpu),
        )
        trainer = _weighted_loss_trainer_class()(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=validation_set,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=partial(_macro_f1, problem_type=problem_type),
            callbacks=[EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)],
            loss_weights=class_weights(train["labels"], problem_type, len(labels)),
            problem_type=problem_type,
        )
        trainer.train()
        trainer.accelerator.wait_for_everyone()
        main = trainer.is_world_process_zero()
        if main:
            logger.info("best validation macro-F1 %.4f (%s)", trainer.state.best_metric or 0.0,
                        trainer.state.best_model_checkpoint)
            shutil.rmtree(checkpoints, ignore_errors=True)
        trained = trainer.model
        trained.eval()
        meta = ModelMeta(
            backend="encoder",
            task=task,  # type: ignore[arg-type]
            labels=list(labels),
            problem_type=problem_type,
            label_names=dict(label_names or {}),
            max_length=config.max_length,
            library_version=_library_version(),
        )
        classifier = cls(trained, tokenizer, meta)
        classifier._writes_files = main
        return classifier


def _pool_windows(window_logits: np.ndarray, owner: np.ndarray, n_texts: int, problem_type: str) -> np.ndarray:
    """Pool window logits per text: max for multi-label (a label anywhere counts), else mean."""
    if problem_type == MULTI_LABEL:
        pooled = np.full((n_texts, window_logits.shape[1]), -np.inf, dtype=np.float32)
        np.maximum.at(pooled, owner, window_logits)
        return pooled
    sums = np.zeros((n_texts, window_logits.shape[1]), dtype=np.float32)
    np.add.at(sums, owner, window_logits)
    counts = np.bincount(owner, minlength=n_texts).astype(np.float32)
    return sums / counts[:, None]



def _library_version() -> str:

    return __version__


def class_weights(labels: Sequence[Any], problem_type: str, n_labels: int) -> torch.Tensor:
    """Loss weights against class imbalance, from training label frequencies.

    Multi-label: BCE ``pos_weight`` per label, negatives/positives; single-label: the
    ``n / (k * count)`` weight per class. Both clipped to ``[1/MAX, MAX]``.
    """
    y = np.asarray(labels)
    if problem_type == MULTI_LABEL:
        positives = y.reshape(len(y), n_labels).sum(axis=0).astype(np.float64)
        weights = (len(y) - positives) / np.maximum(positives, 1.0)
    else:
        counts = np.bincount(y.astype(np.int64), minlength=n_labels).astype(np.float64)
        weights = len(y) / (n_labels * np.maximum(counts, 1.0))
    return torch.tensor(np.clip(weights, 1.0 / MAX_CLASS_WEIGHT, MAX_CLASS_WEIGHT), dtype=torch.float32)


def _weighted_loss_trainer_class() -> type:
    """The Trainer subclass with a class-weighted loss (built lazily: importing Trainer is slow)."""
    from transformers import PrinterCallback, Trainer

    class WeightedLossTrainer(Trainer):
        """Trainer whose loss is class-weighted BCE (multi-label) or cross-entropy (single-label),
        and whose logs go to ``logging`` rather than ``print`` when no progress bar shows them."""

        # compute_loss returns a per-batch mean: let the Trainer divide by accumulation steps.
        loss_is_scaled_for_ga = False

        def __init__(self, *args: Any, loss_weights: torch.Tensor, problem_type: str, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss_weights = loss_weights
            self.problem_type = problem_type
            self.logs_to_logger = self.pop_callback(PrinterCallback) is not None
            self.started = time.monotonic()

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            super().log(logs, *args, **kwargs)
            if self.logs_to_logger and self.is_world_process_zero():
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
                step, total = self.state.global_step, self.state.max_steps
                left = (time.monotonic() - self.started) / step * (total - step) if step and total else 0.0
                logger.info("step %d of %d, epoch %.2f, about %.0f s left: %s", step, total, self.state.epoch or 0.0,
                            left, shown)

        def compute_loss(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: torch.Tensor | int | None = None,
        ) -> torch.Tensor | tuple[torch.Tensor, Any]:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()
            weights = self.loss_weights.to(logits.device)
            if self.problem_type == MULTI_LABEL:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, labels.to(logits.dtype), pos_weight=weights
                )
            else:
                loss = torch.nn.functional.cross_entropy(logits, labels.long().view(-1), weight=weights)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def _macro_f1(eval_pred: Any, problem_type: str) -> dict[str, float]:
    """Validation macro- and micro-F1 at the plain decision rule (logit > 0, or argmax)."""
    from sklearn.metrics import f1_score

    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    y = np.asarray(eval_pred.label_ids)
    if problem_type == MULTI_LABEL:
        predicted = (logits > 0).astype(np.int64)
        y = (y > 0.5).astype(np.int64)
    else:
        predicted = logits.argmax(axis=-1)
    return {
        "macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
    }


def _precision_flags(precision: str, use_cpu: bool) -> dict[str, bool]:
    """``bf16``/``fp16`` TrainingArguments for a precision setting; ``auto``: bf16 where the GPU has it."""
    if precision == "auto":
        gpu = torch.cuda.is_available() and not use_cpu
        return {"bf16": bool(gpu and torch.cuda.is_bf16_supported())}
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}
