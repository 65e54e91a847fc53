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


class _BrokenModel:
    """A model that fails on every text, as one with a truncated ONNX file does."""

    model_id = "broken@1"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, texts: list[str], **kwargs: object) -> list[object]:
        self.calls += 1
        raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed")


def test_a_broken_model_stops_the_run_before_writing_error_rows(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"id": "{i}", "text": "NATO news {i}"}}\n' for i in range(10)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    model = _BrokenModel()
    with pytest.raises(ScoringError, match=r"'broken@1' fails on every text \(RuntimeError: .*INVALID_PROTOBUF"):
        score([source], out, model=model, batch_size=4)
    assert out.read_text(encoding="utf-8") == ""  # no error row counts as done on --resume
    assert model.calls == 2  # the batch and one probe, not one call per record


def test_a_record_the_model_fails_on_still_gets_its_own_error_row(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1", "text": "bad NATO"}\n{"id": "2", "text": "NATO news"}\n', encoding="utf-8")
    summary = score([source], tmp_path / "out.jsonl", model=FakeModel(fail_on="bad"), batch_size=4)
    assert summary.errors == 1 and summary.scored == 1


@pytest.mark.slow
def test_score_with_the_fast_model_name(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1", "text": "NATO is encircling Russia with bases."}\n', encoding="utf-8")
    summary = score([source], tmp_path / "out.jsonl", model="fast")
    assert summary.scored == 1 and summary.errors == 0
