"""Errors and output a person can act on: wrong arguments, broken files, a full disk, an existing
output directory, a long training run, and the command line's own help."""
from __future__ import annotations

import argparse
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from disinfo_clf import predict
from disinfo_clf.cli import build_parser, main
from disinfo_clf.resources import MODELS_DIR

ROOT = Path(__file__).resolve().parents[1]
LINEAR_MODEL_DIR = MODELS_DIR / "narratives-linear"
"""The shipped TF-IDF model (refit on all periods), whichever model is the default."""
QUICK_ROLES = [str(ROOT / "configs" / "role-linear.yaml"), "--set", "data.max_cases=600"]


def _cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "disinfo_clf.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ---- predict() arguments ---------------------------------------------------------------------

@pytest.mark.parametrize("texts, error, words", [
    (5, TypeError, "texts is int"),
    (b"NATO troops", TypeError, "decode"),
    ({"text": "NATO troops"}, TypeError, "mapping"),
    ({"NATO troops", "a coup"}, TypeError, "set"),
])
def test_predict_refuses_what_is_not_text_naming_the_argument(texts: object, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        predict(texts)  # type: ignore[call-overload]


@pytest.mark.parametrize("options, error, words", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": "64"}, TypeError, "batch_size"),
    ({"model": 123}, TypeError, "model is int"),
    ({"top_k": 0}, ValueError, "top_k must be a positive integer"),
])
def test_predict_refuses_bad_options_naming_them(options: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        predict("NATO troops are at the border", **options)


# ---- broken files, full disk -----------------------------------------------------------------

def test_malformed_yaml_config_is_one_line_naming_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("task: narrative\nlinear:\n  C: [1, 2\n  min_df: 2\n")
    assert main(["train", "--config", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "not valid YAML" in line and "line " in line
    assert not (tmp_path / "out").exists()


def test_corrupt_weights_are_one_line_naming_the_file_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path(shutil.copytree(LINEAR_MODEL_DIR, tmp_path / "model"))
    weights = model / "linear.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    assert main(["predict", "--model", str(model), "NATO troops"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(weights) in line and "corrupt" in line and "retrain" in line


def test_a_full_disk_while_training_is_one_line_and_leaves_the_old_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import disinfo_clf.training.train as training

    out = tmp_path / "roles"
    out.mkdir()
    (out / "README.md").write_text("the old model card")
    (out / "disinfo_clf.json").write_text("{}")  # a model directory: --overwrite may replace it

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "evaluate_dir", full)
    assert main(["train", "--config", *QUICK_ROLES, "--output-dir", str(out), "--overwrite"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "no space left" in line and str(out) in line and "free some disk space" in line
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "disinfo_clf.json"] and (out / "README.md").read_text() == "the old model card"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".roles.partial")], "the half-written copy stays behind"


def test_unexpected_errors_are_one_line_and_the_traceback_comes_with_v(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from disinfo_clf import cli

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the model exploded")

    monkeypatch.setattr(cli, "load_model", broken)
    assert main(["predict", "NATO troops"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "RuntimeError: the model exploded" in line and "-v" in line
    assert main(["-v", "predict", "NATO troops"]) == 1
    assert "Traceback" in capsys.readouterr().err


# ---- train into an existing directory ----------------------------------------------------------

def test_train_refuses_an_existing_directory_without_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "roles"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert main(["train", "--config", *QUICK_ROLES, "--output-dir", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(out) in line and "--overwrite" in line
    assert [p.name for p in out.iterdir()] == ["metrics.json"]


def test_overwrite_replaces_the_directory_only_once_the_new_model_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import disinfo_clf.training.train as training

    out = tmp_path / "roles"
    assert main(["train", "--config", *QUICK_ROLES, "--output-dir", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"metrics.json", "README.md", "linear.safetensors"} <= set(first)

    real = training.evaluate_dir

    def killed_while_evaluating(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # the run stops after the model and metrics are written to the staging copy

    monkeypatch.setattr(training, "evaluate_dir", killed_while_evaluating)
    assert main(["train", "--config", *QUICK_ROLES, "--set", "linear.C=0.5", "--output-dir", str(out), "--overwrite"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == first  # untouched, card and metrics agree
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roles"]

    monkeypatch.setattr(training, "evaluate_dir", real)
    assert main(["train", "--config", *QUICK_ROLES, "--set", "linear.C=0.5", "--output-dir", str(out), "--overwrite"]) == 0
    second = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert second["linear.safetensors"] != first["linear.safetensors"] and b"0.5" in second["training_config.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roles"]
    capsys.readouterr()


def test_train_shows_its_stages_without_v(tmp_path: Path) -> None:
    result = _cli(["train", "--config", *QUICK_ROLES, "--output-dir", str(tmp_path / "roles")])
    assert result.returncode == 0, result.stderr
    for stage in ("loading the role data", "splits by time", "training role/linear", "calibrating",
                  "evaluating on validation and test", "model written to"):
        assert stage in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "%|" not in result.stderr  # no progress bars when not a terminal
    assert "model written to" in result.stdout


def test_library_noise_stays_out_of_the_output(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>NATO troops near the border</title><description>NATO is moving troops east.</description></item>"
        "<item><title>A coup</title><description>&lt;p&gt;The West staged a coup.&lt;/p&gt;</description></item>"
        "</channel></rss>", encoding="utf-8")
    result = _cli(["score", str(feed), "-o", str(tmp_path / "out.jsonl")])
    assert result.returncode == 0, result.stderr
    assert "trafilatura" not in result.stderr and "ERROR" not in result.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_no_library_progress_bars_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from transformers.utils import logging as transformers_logging

    from disinfo_clf.models.encoder import quiet_progress_bars

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    try:
        quiet_progress_bars()
        assert not transformers_logging.is_progress_bar_enabled()
        assert not datasets.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()
        datasets.enable_progress_bars()


# ---- the command line itself -------------------------------------------------------------------

def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from disinfo_clf import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"disinfo-clf {__version__}"


def _parsers(parser: argparse.ArgumentParser, name: str = "disinfo-clf"):  # type: ignore[no-untyped-def]
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_and_argument_has_help_and_the_description_is_for_users() -> None:
    parser = build_parser()
    assert "narrative" in parser.description and "parsing" not in parser.description
    missing = [f"{name} {action.dest}" for name, sub in _parsers(parser) for action in sub._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert not missing, f"options without help: {missing}"


def test_top_k_zero_asks_for_a_positive_integer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--top-k", "0", "NATO troops"])
    err = capsys.readouterr().err
    assert "--top-k" in err and "positive integer" in err and "None" not in err


def test_a_bad_set_is_blamed_on_the_set_not_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "configs" / "linear.yaml")
    assert main(["train", "--config", config, "--set", "linear.C=lots"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: --set linear.C=lots") and "expected a number" in line and "linear.yaml" not in line
    assert main(["train", "--config", config, "--set", "linear.typo=1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--set linear.typo=1" in line and "unknown key" in line and "linear.yaml" not in line


def test_evaluate_prints_what_it_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory refit on all periods that keeps no time-split model: evaluate says its numbers
    are in-sample and writes nothing."""
    model_dir = Path(shutil.copytree(LINEAR_MODEL_DIR, tmp_path / "model"))  # evaluate writes: never the shipped copy
    shutil.rmtree(model_dir / "time-split", ignore_errors=True)
    before = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    assert main(["evaluate", str(model_dir), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("IN-SAMPLE") and "macro_f1" in out and "metrics written" not in out
    assert {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()} == before
