"""`disinfo-clf data show`: a person checks what the parser found in a case document."""
from __future__ import annotations

from pathlib import Path

import pytest

from disinfo_clf.cli import main
from disinfo_clf.resources import seed_paths


def test_data_show_prints_cases_metadata_narratives_and_spans(capsys: pytest.CaptureFixture[str]) -> None:
    seed = next(p for p in seed_paths() if p.name.startswith("001"))
    assert main(["data", "show", str(seed)]) == 0
    out = capsys.readouterr().out
    assert out.count("── case ") == 4
    assert "Colour revolutions, George Soros, Euromaidan" in out and "2022-01-11" in out
    assert "narratives: colour-revolutions" in out
    assert "NATO lies blatantly and expands to the East" in out
    spans = out.split("── spans ──")[1].strip().splitlines()
    assert spans[0].startswith("other") and "Disinfo:" in spans[0]
    assert any(line.startswith("claim") for line in spans) and any(line.startswith("debunk") for line in spans)


def test_data_show_on_a_non_text_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    assert main(["data", "show", str(path)]) == 1
    assert "binary.txt" in capsys.readouterr().err
