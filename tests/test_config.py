"""YAML dataclass configs: defaults, overrides, and errors that say how to fix them."""
from __future__ import annotations

import typing
from pathlib import Path

import pytest

from disinfo_clf.config import ConfigError, TrainingConfig, load_config, to_dict

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "narratives.yaml"))
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path)
    backends = typing.get_args(typing.get_type_hints(TrainingConfig)["backend"])
    assert config.task in ("narrative", "role") and config.backend in backends and "linear" in backends


def test_defaults_and_overrides() -> None:
    config = load_config(None, ["linear.C=2", "encoder.max_length=64", "data.max_cases=100", "calibration=temperature"])
    assert config.linear.C == 2.0 and config.encoder.max_length == 64 and config.data.max_cases == 100
    assert config.calibration == "temperature"
    assert to_dict(TrainingConfig())["linear"]["word_ngram_range"] == [1, 2]


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("task: narrative\nlinear:\n  C: 1\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml\.linear: unknown key 'learning_rate'"):
        load_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("backend=svm", r"'svm' is not one of 'linear', 'encoder'"),
        ("linear.C=lots", "expected a number"),
        ("seed", "expected KEY=VALUE"),
        ("nothing.here=1", "unknown key 'nothing'"),
    ],
)
def test_bad_values_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
