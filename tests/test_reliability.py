"""Reliability on damaged or hostile inputs (issue 18): nothing lost, nothing wrong served silently."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from disinfo_clf.scoring import ScoringError, score
from fakes import FakeModel


def test_hard_link_output_to_input_is_refused_before_truncating(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "NATO news"}\n', encoding="utf-8")
    link = tmp_path / "out.jsonl"
    os.link(source, link)
    with pytest.raises(ScoringError, match="is also an input"):
        score([source], link, model=FakeModel(), overwrite=True)
    assert source.read_text(encoding="utf-8") == '{"id": "a", "text": "NATO news"}\n'


def test_train_overwrite_refuses_a_folder_that_is_not_a_model_directory(tmp_path: Path) -> None:
    from disinfo_clf.config import ConfigError
    from disinfo_clf.training.staging import check_output_dir, staged_output

    runs = tmp_path / "runs"
    (runs / "notes").mkdir(parents=True)
    (runs / "notes" / "notes.txt").write_text("weeks of work", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"runs is not a model directory .*holds notes/"):
        check_output_dir(runs, overwrite=True)
    with pytest.raises(ConfigError, match="not a model directory"), staged_output(runs, overwrite=True) as work:
        (work / "disinfo_clf.json").write_text("{}", encoding="utf-8")
    assert (runs / "notes" / "notes.txt").read_text(encoding="utf-8") == "weeks of work"
    model = tmp_path / "model"
    model.mkdir()
    (model / "disinfo_clf.json").write_text("{}", encoding="utf-8")
    with staged_output(model, overwrite=True) as work:  # a model directory is still replaced
        (work / "disinfo_clf.json").write_text('{"new": 1}', encoding="utf-8")
    assert (model / "disinfo_clf.json").read_text(encoding="utf-8") == '{"new": 1}'
