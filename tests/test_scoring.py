"""Scoring runs: one output row per input record, in order, and resumable after a kill."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disinfo_clf.feeds.readers import Record, read_records
from disinfo_clf.scoring import CSV_COLUMNS, JSONL_KEYS, ScoreSummary, ScoringError, score, score_batch
from fakes import FakeModel

TESTS = Path(__file__).parent
DATA = TESTS / "data" / "feeds"
MIXED = [str(DATA / name) for name in ("articles.jsonl", "articles.csv", "legacy_cp1252.csv", "feed.rss",
                                       "feed.atom", "broken.xml", "folder")]
EXPECTED_ERRORS = 7  # 1 empty JSONL item, 2 malformed JSONL lines, 1 empty CSV row, 1 empty RSS item, 1 broken feed, 1 empty file


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_every_input_record_has_one_row_in_order(tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    summary = score(MIXED, out, model=FakeModel(), batch_size=4)
    rows = _jsonl(out)
    assert [r["id"] for r in rows] == [r.id for r in read_records(MIXED)]
    assert len({r["id"] for r in rows}) == len(rows) == summary.records == 23
    assert summary.errors == sum(1 for r in rows if r["error"]) == EXPECTED_ERRORS
    assert summary.scored == 23 - EXPECTED_ERRORS
    scored = next(r for r in rows if r["id"] == "a1")
    assert scored["narrative"] == "nato-threat" and scored["role"] == "claim" and scored["error"] is None
    assert scored["model"] == "fake-model@1" and scored["source"] == MIXED[0] and scored["line"] == 1
    failed = next(r for r in rows if r["id"] == f"{MIXED[0]}:4")
    assert failed["error"].startswith("line 4: invalid JSON") and failed["narrative"] is None and failed["line"] == 4
    assert next(r for r in rows if r["id"] == "w1")["warning"] == "not valid UTF-8; decoded as cp1252"
    assert next(r for r in rows if r["id"] == MIXED[5])["error"].startswith(f"{MIXED[5]}: not a readable RSS/Atom feed")
    assert summary.narratives == {"none": 9, "nato-threat": 4, "ukraine-nazi": 3}
    assert summary.roles == {"claim": 13, "debunk": 3}


def test_csv_output_matches_jsonl_output(tmp_path: Path) -> None:
    score(MIXED, tmp_path / "s.jsonl", model=FakeModel())
    score(MIXED, tmp_path / "s.csv", model=FakeModel(), fmt="csv")
    as_json, as_csv = _jsonl(tmp_path / "s.jsonl"), _csv(tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text(encoding="utf-8").count("id,narrative,") == 1
    assert [r["id"] for r in as_csv] == [r["id"] for r in as_json]
    for j, c in zip(as_json, as_csv):
        assert c["error"] == (j["error"] or "") and c["narrative"] == (j["narrative"] or "")
        assert json.loads(c["scores"]) == j["scores"] if j["scores"] else c["scores"] == ""
        assert c["evidence_text"] == ((j["evidence"] or {}).get("text") or "")


def test_a_record_that_breaks_the_model_only_costs_its_own_row(tmp_path: Path) -> None:
    model = FakeModel(fail_on="Numeric id")
    summary = score(MIXED, tmp_path / "s.jsonl", model=model, batch_size=100)
    rows = {r["id"]: r for r in _jsonl(tmp_path / "s.jsonl")}
    assert rows["5"]["error"] == "model failed: RuntimeError: cannot score a text containing 'Numeric id'"
    assert rows["5"]["narrative"] is None
    assert summary.errors == EXPECTED_ERRORS + 1 and summary.scored == 23 - EXPECTED_ERRORS - 1
    assert model.calls[0] == 23 - EXPECTED_ERRORS and set(model.calls[1:]) == {1}


def _cut_points(data: bytes) -> list[int]:
    """Byte offsets around every line end (mid-line, just before, at and after a newline)."""
    points = {0, 1, len(data) // 3, len(data) - 1}
    for index, byte in enumerate(data):
        if byte == ord("\n"):
            points.update({index - 5, index, index + 1})
    return sorted(p for p in points if 0 <= p <= len(data))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_after_a_cut_at_any_point_gives_the_uninterrupted_output(tmp_path: Path, fmt: str) -> None:
    full = tmp_path / f"full.{fmt}"
    score(MIXED, full, model=FakeModel(), fmt=fmt, batch_size=3)  # type: ignore[arg-type]
    expected = full.read_bytes()
    if fmt == "csv":  # a quoted cell spanning two lines, so that cuts inside it are tried
        assert b'"Fact check: the claim that Ukraine is run by Nazis is false.\nIt was' in expected
    partial = tmp_path / f"partial.{fmt}"
    for cut in _cut_points(expected):
        partial.write_bytes(expected[:cut])
        summary = score(MIXED, partial, model=FakeModel(), fmt=fmt, resume=True, batch_size=3)  # type: ignore[arg-type]
        assert partial.read_bytes() == expected, f"cut at byte {cut}"
        assert summary.records == 23 and summary.errors == EXPECTED_ERRORS


def test_resume_of_a_finished_run_adds_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    score(MIXED, out, model=FakeModel())
    before = out.read_bytes()
    model = FakeModel()
    summary = score(MIXED, out, model=model, resume=True)
    assert out.read_bytes() == before and model.calls == []
    assert summary.resumed == summary.records == 23 and summary.narratives == {"none": 9, "nato-threat": 4, "ukraine-nazi": 3}


def test_resume_refuses_an_output_of_other_inputs(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    score(MIXED[:2], out, model=FakeModel())
    with pytest.raises(ScoringError, match="written for other inputs or another model .the inputs were .*articles.jsonl"):
        score(MIXED[1:], out, model=FakeModel(), resume=True)
    with pytest.raises(ScoringError, match="written for other inputs"):
        score(MIXED[:1], out, model=FakeModel(), resume=True)
    # Behind the manifest, the rows themselves are checked against the records.
    rows = out.read_text(encoding="utf-8").replace('"id": "a1"', '"id": "zz"', 1)
    out.write_text(rows, encoding="utf-8")
    with pytest.raises(ScoringError, match="does not belong to these inputs: its row 1 has id 'zz'"):
        score(MIXED[:2], out, model=FakeModel(), resume=True)
    out.write_text(rows.replace('"id": "zz"', '"id": "a1"') * 2, encoding="utf-8")
    with pytest.raises(ScoringError, match="holds more rows"):
        score(MIXED[:2], out, model=FakeModel(), resume=True)
    score(MIXED[:2], tmp_path / "s.csv", model=FakeModel(), fmt="csv")
    with pytest.raises(ScoringError, match="the output format was 'csv', now 'jsonl'"):
        score(MIXED[:2], tmp_path / "s.csv", model=FakeModel(), resume=True)
    with pytest.raises(ScoringError, match="the output format was 'jsonl', now 'csv'"):
        score(MIXED[:2], out, model=FakeModel(), fmt="csv", resume=True)


def test_existing_output_needs_resume_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    out.write_text("precious\n")
    with pytest.raises(ScoringError, match="already exists: pass --resume .* or --overwrite"):
        score(MIXED[:1], out, model=FakeModel())
    assert out.read_text() == "precious\n"
    score(MIXED[:1], out, model=FakeModel(), overwrite=True)
    assert len(_jsonl(out)) == 8


def test_fatal_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScoringError, match="missing.jsonl: no such file"):
        score([MIXED[0], tmp_path / "missing.jsonl"], tmp_path / "s.jsonl", model=FakeModel())
    assert not (tmp_path / "s.jsonl").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ScoringError, match=f"cannot write {blocker / 'out.jsonl'}"):
        score(MIXED[:1], blocker / "out.jsonl", model=FakeModel())
    with pytest.raises(ScoringError, match="--resume needs an output file"):
        score(MIXED[:1], "-", model=FakeModel(), resume=True)
    with pytest.raises(ScoringError, match="unknown input format 'yaml'"):
        score(MIXED[:1], tmp_path / "s.jsonl", model=FakeModel(), input_format="yaml")
    assert not (tmp_path / "s.jsonl").exists()
    with pytest.raises(ScoringError, match="is also an input"):
        score(MIXED[:1], MIXED[0], model=FakeModel(), overwrite=True)


def test_stdout_output_and_stdin_input(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    summary = score(MIXED[:2], None, model=FakeModel())
    rows = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in read_records(MIXED[:2])]
    assert summary.output is None and summary.records == 12
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"id,text\nq1,NATO news\n"))))
    score(["-"], "-", model=FakeModel(), fmt="csv")
    written = capsysbinary.readouterr().out.decode()
    assert written.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert [r["id"] for r in csv.DictReader(io.StringIO(written))] == ["q1"]


def test_summary_table_reports_counts() -> None:
    summary = ScoreSummary(records=5, scored=4, errors=1, resumed=2, narratives={"nato-threat": 3, "none": 1},
                           roles={"claim": 4}, elapsed=2.0, output="out.jsonl")
    table = summary.format_table()
    assert "records  5  (2 from the resumed run)" in table and "errors   1" in table
    assert "1.5 records/s" in table and "out.jsonl" in table
    assert "nato-threat        3" in table.replace("  records", "")


def _write_inputs(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for i in range(n):
            stream.write(json.dumps({"id": f"r{i}", "text": f"Item {i}: NATO said something {i % 7}."}) + "\n")


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_output(tmp_path: Path) -> None:
    inputs, out, full = tmp_path / "in.jsonl", tmp_path / "killed.jsonl", tmp_path / "full.jsonl"
    _write_inputs(inputs, 20_000)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fakes import FakeModel; "
            "from disinfo_clf.scoring import score; "
            "score([sys.argv[2]], sys.argv[3], model=FakeModel(delay=0.01), batch_size=50)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-c", code, str(TESTS), str(inputs), str(out)], env=env)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size < 100_000) and time.monotonic() < deadline:
        assert process.poll() is None, "the scoring subprocess ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(out.read_bytes().splitlines())
    assert 0 < done < 20_000
    # The same settings as the killed run: a resume with another batch size is refused (test_reliability.py).
    summary = score([inputs], out, model=FakeModel(), resume=True, batch_size=50)
    score([inputs], full, model=FakeModel(), batch_size=50)
    assert out.read_bytes() == full.read_bytes()
    assert summary.records == 20_000 and summary.resumed >= done - 1


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_input(tmp_path: Path) -> None:
    inputs = tmp_path / "in.jsonl"
    _write_inputs(inputs, 100_000)
    # VmHWM, not ru_maxrss: the latter keeps the forking pytest process's peak across exec.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fakes import FakeModel; "
            "from disinfo_clf.scoring import score; "
            "s = score([sys.argv[2]], sys.argv[3], model=FakeModel()); "
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')); "
            "print(s.records, int(hwm.split()[1]) // 1024)")
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    result = subprocess.run([sys.executable, "-c", code, str(TESTS), str(inputs), str(tmp_path / "o.jsonl")],
                            env=env, capture_output=True, text=True, check=True)
    records, max_rss_mb = map(int, result.stdout.split())
    assert records == 100_000
    assert max_rss_mb < 300, f"peak RSS {max_rss_mb} MB"


def test_score_batch_gives_one_row_per_record_with_the_row_schema() -> None:
    records = [Record("a", "NATO news", "s", 1), Record("b", None, "s", 2, error="empty text"),
               Record("c", None, "s", 3, warning="skipped: a named pipe"), Record("d", "\ud83d", "s", 4)]
    rows = score_batch(records, FakeModel(), {})
    assert [tuple(row) for row in rows] == [JSONL_KEYS] * 4
    assert [(r["id"], r["narrative"], r["error"], r["warning"]) for r in rows[:3]] == [
        ("a", "nato-threat", None, None), ("b", None, "empty text", None), ("c", None, None, "skipped: a named pipe")]
    assert "lone UTF-16 surrogate" in rows[3]["error"]
    summary = ScoreSummary()
    for row in rows:
        summary.add(row)
    assert (summary.scored, summary.errors, summary.skipped) == (1, 2, 1)


def test_unknown_engines_and_stray_engine_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScoringError, match="unknown engine 'spark'; choose one of local, ray"):
        score(MIXED[:1], tmp_path / "s.jsonl", model=FakeModel(), engine="spark")
    with pytest.raises(ScoringError, match="workers: options of the ray engine"):
        score(MIXED[:1], tmp_path / "s.jsonl", model=FakeModel(), workers=2)
    assert not (tmp_path / "s.jsonl").exists()
