"""The Ray engine: the local engine's rows, one part file per shard, every record exactly once
even when a worker or the driver is killed mid-run. One local Ray session serves every test."""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disinfo_clf.cli import main
from disinfo_clf.scoring.ray.manifest import LOCK, MANIFEST, prepare_output
from disinfo_clf.scoring.ray.engine import INSTALL_HINT, score_ray
from disinfo_clf.scoring.ray.shards import read_part
from disinfo_clf.scoring import ScoringError, score
from fakes import FakeModel

TESTS = Path(__file__).parent
ROOT = TESTS.parent
DATA = TESTS / "data" / "feeds"
MIXED = [str(DATA / name) for name in ("articles.jsonl", "articles.csv", "legacy_cp1252.csv", "feed.rss",
                                       "feed.atom", "broken.xml", "folder")]
FLOATS = ("score", "role_score", "relevance")


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray cluster (2 CPUs) for the whole session; its workers can import ``fakes``."""
    ray = pytest.importorskip("ray")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), str(ROOT), saved) if p)
    context = ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def pid_recording_fake(pid_dir: str, delay: float = 0.0, model_id: str = "fake-model@1") -> FakeModel:
    """A :class:`FakeModel` that leaves a file named after the worker process that built it."""
    Path(pid_dir, str(os.getpid())).touch()
    return FakeModel(model_id=model_id, delay=delay)


def _write_inputs(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as stream:
        for i in range(n):
            stream.write(json.dumps({"id": f"r{i}", "text": f"Item {i}: NATO said something {i % 7}."}) + "\n")
        stream.write("{not json\n")
    return path


def _parts(directory: Path, fmt: str = "jsonl") -> list[Path]:
    return sorted(directory.glob(f"part-*.{fmt}"))


def _rows(directory: Path, fmt: str = "jsonl") -> list[dict[str, Any]]:
    return [row for part in _parts(directory, fmt) for row in read_part(part, fmt)]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _assert_same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    for mine, theirs in zip(got, expected):
        assert mine.keys() == theirs.keys()
        for key in mine:
            if key in FLOATS and theirs[key] is not None:
                # Shards batch records differently from the local engine: float noise in the last digits.
                tolerance = 2e-4 if key == "relevance" else 1e-6  # relevance is rounded to 4 decimals
                assert mine[key] == pytest.approx(theirs[key], abs=tolerance), (mine["id"], key)
            elif key == "scores" and theirs[key] is not None:
                assert list(mine[key]) == list(theirs[key])
                assert list(mine[key].values()) == pytest.approx(list(theirs[key].values()), abs=1e-6)
            elif key == "matches" and theirs[key]:
                assert [m["id"] for m in mine[key]] == [m["id"] for m in theirs[key]], mine["id"]
                assert [m["score"] for m in mine[key]] == pytest.approx([m["score"] for m in theirs[key]], abs=1e-6)
            else:
                assert mine[key] == theirs[key], (mine["id"], key)


@pytest.mark.slow
def test_rows_equal_the_local_engines_with_the_default_model(tmp_path: Path, ray_address: str) -> None:
    from disinfo_clf import load_model

    score(MIXED, tmp_path / "local.jsonl", model=load_model())
    summary = score_ray(MIXED, tmp_path / "out", model=None, workers=2, shard_size=5)
    expected = _jsonl(tmp_path / "local.jsonl")
    _assert_same_rows(_rows(tmp_path / "out"), expected)
    assert len(_parts(tmp_path / "out")) == 5 and summary.records == len(expected) == 23
    assert summary.errors == sum(1 for r in expected if r["error"]) == 7
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["model"]["id"] == expected[0]["model"]
    assert [s["records"] for s in manifest["shards"].values()] == [5, 5, 5, 5, 3]


@pytest.mark.slow
def test_parquet_input_and_output_keep_the_row_schema(tmp_path: Path, ray_address: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["p1", "p2", "p3", "a1"], "title": ["NATO drills", "", "Nazis in Kyiv?", "Dup"],
                      "text": ["Tanks at the border.", "", "The claim is false.", "NATO again"]})
    pq.write_table(table, tmp_path / "in.parquet")
    inputs = [str(tmp_path / "in.parquet"), MIXED[0]]
    model = functools.partial(FakeModel)
    summary = score_ray(inputs, tmp_path / "out", model=model, fmt="parquet", shard_size=3, workers=1)
    rows = _rows(tmp_path / "out", "parquet")
    assert [r["id"] for r in rows[:4]] == ["p1", "p2", "p3", "a1"] and rows[4]["id"] == "a1#2"
    assert rows[0]["narrative"] == "nato-threat" and rows[0]["evidence"]["text"].startswith("NATO drills. Tanks")
    assert rows[1]["error"] == "empty text" and rows[1]["scores"] is None and rows[1]["line"] == 2
    assert rows[2]["role"] == "debunk"
    score(MIXED[:1], tmp_path / "local.jsonl", model=FakeModel())
    local = _jsonl(tmp_path / "local.jsonl")
    renamed = {"a1": "a1#2", "a1#2": "a1#3"}  # the Parquet input, read first, already has an a1
    local = [{**row, "id": renamed.get(row["id"], row["id"])} for row in local]
    _assert_same_rows(rows[4:], local)
    assert summary.records == 4 + len(local)
    whole = pq.read_table(tmp_path / "out")  # the folder is one Parquet dataset (the manifest is skipped)
    assert whole.num_rows == summary.records and whole.schema.field("scores").type == pa.map_(pa.string(), pa.float64())


@pytest.mark.slow
def test_a_killed_worker_loses_and_doubles_nothing(tmp_path: Path, ray_address: str) -> None:
    inputs, out, pids = _write_inputs(tmp_path / "in.jsonl", 600), tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    killed: dict[str, Any] = {}

    def kill_a_worker_after_the_first_part() -> None:
        deadline = time.monotonic() + 60
        while not _parts(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        killed["parts_before"] = len(_parts(out))
        killed["pid"] = int(sorted(os.listdir(pids))[0])
        os.kill(killed["pid"], signal.SIGKILL)

    watcher = threading.Thread(target=kill_a_worker_after_the_first_part)
    watcher.start()
    model = functools.partial(pid_recording_fake, str(pids), 0.1)
    summary = score_ray([inputs], out, model=model, workers=2, shard_size=20, batch_size=10)
    watcher.join()
    assert 1 <= killed["parts_before"] < 31, "the worker was not killed mid-run"
    assert len(os.listdir(pids)) >= 3, "the killed worker was not replaced"
    score([inputs], tmp_path / "local.jsonl", model=FakeModel())
    assert _rows(out) == _jsonl(tmp_path / "local.jsonl")
    assert summary.records == 601 and summary.resumed == 0 and len(_parts(out)) == 31


DRIVER = """
import sys, functools
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import ray
from disinfo_clf.scoring.ray.engine import score_ray
from test_engine_ray import pid_recording_fake
ray.init(address=sys.argv[3], configure_logging=False, log_to_driver=False)
score_ray([sys.argv[4]], sys.argv[5], model=functools.partial(pid_recording_fake, sys.argv[6], 0.1),
          workers=2, shard_size=20, batch_size=10)
"""


@pytest.mark.slow
def test_resume_after_killing_the_driver_loses_and_doubles_nothing(tmp_path: Path, ray_address: str) -> None:
    inputs, out, pids = _write_inputs(tmp_path / "in.jsonl", 600), tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(TESTS), str(ROOT), ray_address, str(inputs),
                                str(out), str(pids)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_parts(out)) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(_parts(out))
    assert 3 <= written < 31, "the driver was not killed mid-run"
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert not manifest["complete"]
    with pytest.raises(ScoringError, match="already holds a scoring run: pass --resume"):
        score_ray([inputs], out, model=FakeModel)
    summary = score_ray([inputs], out, model=FakeModel, resume=True)
    score([inputs], tmp_path / "local.jsonl", model=FakeModel())
    assert _rows(out) == _jsonl(tmp_path / "local.jsonl")
    assert summary.records == 601 and written * 20 <= summary.resumed < 601
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, MANIFEST, *(f"part-{i:05d}.jsonl" for i in range(31))])
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["totals"] == {"shards": 31, "records": 601, "scored": 600, "errors": 1}


@pytest.mark.slow
def test_resume_refuses_other_inputs_or_another_model_and_redoes_nothing(tmp_path: Path, ray_address: str) -> None:
    inputs, out, pids = _write_inputs(tmp_path / "in.jsonl", 30), tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    score_ray([inputs], out, model=FakeModel, shard_size=10, workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in _parts(out)}
    summary = score_ray([inputs], out, model=functools.partial(pid_recording_fake, str(pids)), resume=True, workers=1)
    assert summary.resumed == summary.records == 31 and summary.narratives == {"nato-threat": 30}
    assert {p.name: p.stat().st_mtime_ns for p in _parts(out)} == before
    with pytest.raises(ScoringError, match="the model was .fake-model@1., now .fake-model@2."):
        score_ray([inputs], out, model=functools.partial(FakeModel, "fake-model@2"), resume=True, workers=1)
    with pytest.raises(ScoringError, match="--shard-size was 10, now 7"):
        score_ray([inputs], out, model=FakeModel, resume=True, shard_size=7)
    with inputs.open("a", encoding="utf-8") as stream:
        stream.write('{"id": "late", "text": "NATO again"}\n')
    with pytest.raises(ScoringError, match=r"input .*in.jsonl changed \(size"):
        score_ray([inputs], out, model=FakeModel, resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in _parts(out)} == before
    with pytest.raises(ScoringError, match=r"more GPUs than the Ray cluster has \(0\)"):
        score_ray([inputs], tmp_path / "gpu", model=FakeModel, gpus_per_worker=1)


def test_output_folder_must_be_new_empty_or_resumed(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ScoringError, match="holds files that are not scoring output"):
        score_ray(MIXED[:1], tmp_path / "other", model=FakeModel, overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ScoringError, match="is a file"):
        score_ray(MIXED[:1], tmp_path / "file", model=FakeModel)
    with pytest.raises(ScoringError, match="writes jsonl or parquet"):
        score_ray(MIXED[:1], tmp_path / "out", model=FakeModel, fmt="csv")
    with pytest.raises(ScoringError, match="cannot read standard input"):
        score_ray(["-"], tmp_path / "out", model=FakeModel)
    with pytest.raises(ScoringError, match="missing.jsonl: no such file"):
        score_ray([tmp_path / "missing.jsonl"], tmp_path / "out", model=FakeModel)
    _, lock = prepare_output(tmp_path / "busy", resume=False, overwrite=False)
    try:
        with pytest.raises(ScoringError, match="being written by another scoring run"):
            score_ray(MIXED[:1], tmp_path / "busy", model=FakeModel, resume=True)
    finally:
        os.close(lock)
    from disinfo_clf.scoring.ray.engine import model_spec

    with pytest.raises(ScoringError, match="pass the model directory"):
        model_spec(FakeModel())


def test_without_ray_the_engine_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ScoringError, match=r'pip install "disinfo-clf\[ray\]"'):
        score_ray(MIXED[:1], tmp_path / "out", model=FakeModel)
    assert main(["score", MIXED[0], "-o", str(tmp_path / "out"), "--engine", "ray"]) == 1
    assert INSTALL_HINT in capsys.readouterr().err


@pytest.mark.slow
def test_cli_scores_on_ray_into_parquet_and_resumes(tmp_path: Path, ray_address: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    inputs, out = _write_inputs(tmp_path / "in.jsonl", 40), tmp_path / "out"
    args = ["score", str(inputs), "-o", str(out), "--engine", "ray", "--workers", "1", "--format", "parquet",
            "--shard-size", "25"]
    assert main(args) == 0
    assert "records  41" in capsys.readouterr().err
    rows = _rows(out, "parquet")
    assert len(rows) == 41 and rows[-1]["error"].startswith("line 41: invalid JSON")
    assert main([*args, "--resume"]) == 0
    assert "(41 from the resumed run)" in capsys.readouterr().err
