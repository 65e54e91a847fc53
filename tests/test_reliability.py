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
