"""What a model directory may set: every file from a directory is checked before it is used.

A model directory can come from anyone, so nothing in it runs as code or reaches a library
unchecked: folders with custom code (``auto_map``, ``*.py``) are refused, and the settings in
``disinfo_clf.json``, a linear model's ``config.json`` and ``cues.json`` must be on an
allow-list of keys, types and ranges. Each refusal names the file and the key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ModelDirectoryError

MULTI_LABEL = "multi_label_classification"
SINGLE_LABEL = "single_label_classification"

CODE_KEYS = ("auto_map", "custom_pipelines")
"""Keys with which a transformers config asks to import Python files shipped beside it."""
CODE_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")
MAX_LABELS = 10_000
MAX_NGRAM = 10
MAX_CUES = 20_000
MAX_CUE_WEIGHT = 100.0
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _bad(path: Path, key: str, problem: str) -> ModelDirectoryError:
    return ModelDirectoryError(f"{path}: {key} {problem}; the directory cannot be used (retrain it or "
                               "get an intact copy)")


def check_finite(values: Any, path: Path, key: str) -> None:
    """Refuse numbers (an array, or nested lists/dict values of numbers) that are not all finite: a NaN
    weight would give NaN scores (not valid JSON) or a first label served as the answer."""
    if isinstance(values, Mapping):
        values = list(values.values())
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _bad(path, key, f"must hold numbers ({exc})") from exc
    if not np.isfinite(array).all():
        raise _bad(path, key, f"holds {int((~np.isfinite(array)).sum())} NaN or infinite values")


def refuse_code(directory: str | Path) -> None:
    """Refuse a directory that carries Python code or asks transformers to import some."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    scripts = sorted(p for p in directory.rglob("*.py") if p.is_file())
    if scripts:
        raise ModelDirectoryError(
            f"{scripts[0]}: refusing the model directory {directory}, which holds Python code; disinfo_clf never "
            "runs code that comes with a model. Use a directory without *.py files."
        )
    for name in CODE_FILES:
        path = directory / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ModelDirectoryError(f"{path} is corrupt: {exc}") from exc
            key = next((k for k in CODE_KEYS if isinstance(data, dict) and k in data), None)
            if key:
                raise ModelDirectoryError(
                    f"{path}: refusing the model directory {directory}: {key!r} asks to run custom code, which "
                    f"disinfo_clf never does. Remove {key!r} (and any *.py files) to load the standard architecture."
                )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _literal_values(meta_class: type, name: str) -> tuple[Any, ...]:
    return typing.get_args(typing.get_type_hints(meta_class)[name])


def check_meta(data: Any, path: Path, meta_class: type) -> None:
    """Refuse ``disinfo_clf.json`` content outside what ``meta_class`` (the :class:`~.meta.ModelMeta`
    dataclass) allows."""
    if not isinstance(data, dict):
        raise _bad(path, "the file", "must hold a JSON object")
    known = {f.name for f in dataclasses.fields(meta_class)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _bad(path, repr(unknown[0]), f"is not a setting of disinfo_clf.json (allowed: {', '.join(sorted(known))})")
    for name in ("backend", "task", "problem_type", "labels"):
        if name not in data:
            raise _bad(path, repr(name), "is missing")
    for name in ("backend", "task"):
        if data[name] not in _literal_values(meta_class, name):
            raise _bad(path, repr(name), f"is {data[name]!r}, not one of {', '.join(map(repr, _literal_values(meta_class, name)))}")
    if data["problem_type"] not in (MULTI_LABEL, SINGLE_LABEL):
        raise _bad(path, "'problem_type'", f"is {data['problem_type']!r}, not {MULTI_LABEL!r} or {SINGLE_LABEL!r}")
    labels = data["labels"]
    if (not isinstance(labels, list) or not labels or len(labels) > MAX_LABELS or len(set(map(str, labels))) != len(labels)
            or not all(isinstance(x, str) and x for x in labels)):
        raise _bad(path, "'labels'", f"must be a list of 1 to {MAX_LABELS:,} distinct non-empty strings")
    names = data.get("label_names", {})
    if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise _bad(path, "'label_names'", "must map label ids to strings")
    thresholds = data.get("thresholds", [])
    if (not isinstance(thresholds, list) or len(thresholds) not in (0, len(labels))
            or not all(_is_number(t) and 0.0 <= t <= 1.0 for t in thresholds)):
        raise _bad(path, "'thresholds'", f"must be empty or {len(labels)} numbers between 0 and 1, one per label")
    _check_calibration(data.get("calibration", {"method": "none"}), len(labels), data["problem_type"], path)
    max_length = data.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= 1_000_000):
        raise _bad(path, "'max_length'", "must be null or a whole number of tokens between 1 and 1,000,000")
    for name in ("model_id", "library_version"):
        if not isinstance(data.get(name, ""), str) or len(data.get(name, "")) > 500:
            raise _bad(path, repr(name), "must be a string of at most 500 characters")


def _check_calibration(params: Any, n_labels: int, problem_type: str, path: Path) -> None:
    if not isinstance(params, dict) or params.get("method", "none") not in ("none", "temperature", "platt"):
        raise _bad(path, "'calibration'", "must be {\"method\": \"none\" | \"temperature\" | \"platt\", ...}")
    method = params.get("method", "none")
    allowed = {"none": {"method"}, "temperature": {"method", "temperature"}, "platt": {"method", "a", "b"}}[method]
    extra = sorted(set(params) - allowed)
    if extra:
        raise _bad(path, f"'calibration.{extra[0]}'", f"is not a {method} calibration parameter")
    if method == "temperature" and not (_is_number(params.get("temperature")) and 1e-6 <= params["temperature"] <= 1e6):
        raise _bad(path, "'calibration.temperature'", "must be a number between 1e-6 and 1e6")
    if method == "platt":
        size = n_labels if problem_type == MULTI_LABEL else 1
        for key in ("a", "b"):
            value = params.get(key)
            if not isinstance(value, list) or len(value) != size or not all(_is_number(v) and abs(v) <= 1e6 for v in value):
                raise _bad(path, f"'calibration.{key}'", f"must be a list of {size} numbers")


_VECTORIZER_FLAGS = ("lowercase", "sublinear_tf", "use_idf", "smooth_idf", "binary")
_VECTORIZER_CHOICES = {"norm": ("l1", "l2", None), "strip_accents": (None, "ascii", "unicode")}
_ANALYZERS = {"word": ("word",), "char": ("char_wb", "char")}


def check_vectorizer_settings(settings: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The TfidfVectorizer arguments of a linear model's ``config.json`` (``vectorizers``), allowed
    keys and values only: nothing that makes scikit-learn read files, run a pattern of the
    directory's choosing or grow without bound."""
    if not isinstance(settings, dict) or set(settings) != set(_ANALYZERS):
        raise _bad(path, "'vectorizers'", f"must hold exactly {', '.join(map(repr, _ANALYZERS))}")
    allowed = {"analyzer", "ngram_range", "stop_words", "token_pattern", *_VECTORIZER_FLAGS, *_VECTORIZER_CHOICES}
    for name, values in settings.items():
        where = f"vectorizers.{name}"
        if not isinstance(values, dict):
            raise _bad(path, repr(where), "must be a JSON object of settings")
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise _bad(path, f"'{where}.{unknown[0]}'", f"is not a setting a model directory may give (allowed: {', '.join(sorted(allowed))})")
        if values.get("analyzer") not in _ANALYZERS[name]:
            raise _bad(path, f"'{where}.analyzer'", f"must be {' or '.join(map(repr, _ANALYZERS[name]))}")
        ngrams = values.get("ngram_range")
        if (not isinstance(ngrams, list) or len(ngrams) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in ngrams)
                or not 1 <= ngrams[0] <= ngrams[1] <= MAX_NGRAM):
            raise _bad(path, f"'{where}.ngram_range'", f"must be [low, high] with 1 <= low <= high <= {MAX_NGRAM}")
        for flag in _VECTORIZER_FLAGS:
            if flag in values and not isinstance(values[flag], bool):
                raise _bad(path, f"'{where}.{flag}'", "must be true or false")
        for key, choices in _VECTORIZER_CHOICES.items():
            if key in values and values[key] not in choices:
                raise _bad(path, f"'{where}.{key}'", f"must be one of {', '.join(map(repr, choices))}")
        if values.get("token_pattern", DEFAULT_TOKEN_PATTERN) != DEFAULT_TOKEN_PATTERN:
            raise _bad(path, f"'{where}.token_pattern'", f"must be the default {DEFAULT_TOKEN_PATTERN!r} (a model "
                       "directory cannot bring its own regular expression)")
        stop_words = values.get("stop_words")
        if not (stop_words in (None, "english") or (isinstance(stop_words, list) and len(stop_words) <= 100_000
                                                   and all(isinstance(w, str) for w in stop_words))):
            raise _bad(path, f"'{where}.stop_words'", "must be null, 'english' or a list of words")
    return settings


def check_cues(data: Any, labels: Sequence[str], path: Path) -> tuple[Mapping[str, list[str]], float]:
    """The label → cues mapping and weight of ``cues.json``, for exactly the model's labels."""
    if not isinstance(data, dict) or set(data) != {"weight", "cues"}:
        raise _bad(path, "the file", "must hold exactly 'weight' and 'cues'")
    weight, cues = data["weight"], data["cues"]
    if not _is_number(weight) or not 0.0 <= weight <= MAX_CUE_WEIGHT:
        raise _bad(path, "'weight'", f"must be a number between 0 and {MAX_CUE_WEIGHT:g}")
    if not isinstance(cues, dict) or list(cues) != list(labels):
        raise _bad(path, "'cues'", "must map each label of disinfo_clf.json, in its order, to a list of cues")
    total = 0
    for label, items in cues.items():
        if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
            raise _bad(path, f"'cues.{label}'", "must be a list of strings")
        total += len(items)
    if total > MAX_CUES:
        raise _bad(path, "'cues'", f"holds {total:,} cues, more than {MAX_CUES:,}")
    return cues, float(weight)
