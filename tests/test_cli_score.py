"""`disinfo-clf score` end to end with the embedded default model on mixed, partly broken inputs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from disinfo_clf.cli import main
from disinfo_clf.feeds.readers import read_records

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
INPUTS = [FEEDS / "articles.jsonl", FEEDS / "articles.csv", FEEDS / "legacy_cp1252.csv", FEEDS / "feed.rss",
          FEEDS / "feed.atom", FEEDS / "broken.xml", FEEDS / "folder"]


def test_score_accounts_for_every_record_of_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = [r.id for r in read_records([str(p) for p in INPUTS])]
    out = tmp_path / "scored.jsonl"
    assert main(["score", *map(str, INPUTS), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == expected  # one row per record, in input order, none doubled
    errors = [r for r in rows if r["error"]]
    scored = [r for r in rows if not r["error"]]
    assert errors and scored
    assert any("broken.xml" in r["source"] for r in errors)
    assert all(r["narrative"] is None for r in errors)
    model_id = scored[0]["model"]
    assert model_id.startswith("narratives-default")
    for row in scored:
        assert row["narrative"] in row["scores"] and row["role"] in ("claim", "debunk") and row["model"] == model_id
    summary = capsys.readouterr().err
    assert f"records  {len(rows)}" in summary and f"errors   {len(errors)}" in summary


def test_score_csv_output_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    inputs = [str(FEEDS / "articles.jsonl"), str(FEEDS / "feed.rss")]
    assert main(["score", *inputs, "-o", str(out), "--format", "csv"]) == 0
    full = out.read_bytes()
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert len(rows) == len(list(read_records(inputs)))
    out.write_bytes(full[: len(full) // 2])  # a run killed half-way
    assert main(["score", *inputs, "-o", str(out), "--format", "csv", "--resume"]) == 0
    assert out.read_bytes() == full


def test_unreadable_input_is_fatal_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err
