"""Reliability on damaged or hostile inputs (issue 18): nothing lost, nothing wrong served silently."""
from __future__ import annotations

import os
from collections.abc import Callable
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


def _saved_index(tmp_path: Path, *, ivf: bool = False) -> Path:
    from disinfo_clf.matching.index import CaseIndex
    from disinfo_clf.matching.casefile import IndexedCase
    from hashing_encoder import HashingEncoder

    cases = [IndexedCase(id=str(i), url=None, title=str(i), claim=f"claim number {i} about NATO", date=None)
             for i in range(60)]
    directory = tmp_path / "idx"
    if ivf:
        pytest.importorskip("faiss")
    CaseIndex.build(cases, HashingEncoder()).save(directory, dtype="float32", ivf=ivf)
    return directory


def _rewrite_tensors(directory: Path, change: Callable[[dict], None]) -> None:
    from safetensors.numpy import load_file, save_file

    path = directory / "embeddings.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata={"format_version": "1"})


def test_index_with_rotated_cases_is_refused(tmp_path: Path) -> None:
    import json

    from disinfo_clf.matching.index import CaseIndex, CaseIndexError

    directory = _saved_index(tmp_path)
    path = directory / "cases.json"
    cases = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(cases[1:] + cases[:1]), encoding="utf-8")
    with pytest.raises(CaseIndexError, match=r"cases\.json is not the case list .*scripts/build_index\.py"):
        CaseIndex.load(directory)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda t: t["embeddings"].__setitem__((3, 0), float("nan")), "NaN or infinite values"),
    (lambda t: t.__setitem__("embeddings", (t["embeddings"] * 100).astype("int8")), "dtype int8, not a float"),
    (lambda t: t.__setitem__("embeddings", t["embeddings"][:-1]), "has shape"),
])
def test_index_with_damaged_embeddings_is_refused(tmp_path: Path, change: object, expected: str) -> None:
    from disinfo_clf.matching.index import CaseIndex, CaseIndexError

    directory = _saved_index(tmp_path)
    _rewrite_tensors(directory, change)
    with pytest.raises(CaseIndexError, match=rf"embeddings\.safetensors: .*{expected}.*disinfo-clf index build"):
        CaseIndex.load(directory)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda t: t["ivf_assign"].__setitem__(0, 10_000_000), "names lists outside"),
    (lambda t: t["ivf_assign"].__setitem__(0, -1), "names lists outside"),
    (lambda t: t.__setitem__("ivf_assign", t["ivf_assign"][:-5]), "one integer per case"),
    (lambda t: t.__setitem__("ivf_centroids", t["ivf_centroids"][:, :-1].copy()), "has shape"),
])
def test_crafted_ivf_layout_never_reaches_faiss(tmp_path: Path, change: object, expected: str) -> None:
    from disinfo_clf.matching.index import CaseIndex, CaseIndexError

    directory = _saved_index(tmp_path, ivf=True)
    _rewrite_tensors(directory, change)
    with pytest.raises(CaseIndexError, match=expected):
        CaseIndex.load(directory)


MODELS = Path(__file__).parents[1] / "disinfo_clf" / "resources" / "models"


def _poison_tensor(directory: Path, file: str, key: str) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(directory / file))
    tensors[key] = tensors[key].copy()
    tensors[key].flat[0] = float("nan")
    save_file(tensors, str(directory / file))


@pytest.mark.parametrize(("name", "file", "key"), [
    ("roles-linear", "linear.safetensors", "intercept"),
    ("roles-linear", "linear.safetensors", "coef"),
    ("roles-e5", "head.safetensors", "intercept"),
])
def test_nan_weights_are_refused_at_load(tmp_path: Path, name: str, file: str, key: str) -> None:
    import shutil

    from disinfo_clf.models.errors import ModelDirectoryError
    from disinfo_clf.models.registry import load_classifier

    directory = Path(shutil.copytree(MODELS / name, tmp_path / name))
    _poison_tensor(directory, file, key)
    with pytest.raises(ModelDirectoryError, match=rf"{file}: {key} holds 1 NaN or infinite values"):
        load_classifier(directory)


@pytest.mark.parametrize("key", ["weights", "group_calibration"])
def test_nan_in_combined_settings_is_refused_at_load(tmp_path: Path, key: str) -> None:
    import json
    import shutil

    from disinfo_clf.models.errors import ModelDirectoryError
    from disinfo_clf.models.registry import load_classifier

    directory = Path(shutil.copytree(MODELS / "narratives-default", tmp_path / "models" / "narratives-default"))
    data = json.loads((directory / "combined.json").read_text(encoding="utf-8"))
    data[key]["en"][1] = float("nan")
    (directory / "combined.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match=rf"combined\.json: '{key}' holds 1 NaN"):
        load_classifier(directory)


@pytest.mark.parametrize("opener", ["<script>", "<!--", "<style>", "<svg>", "<a "])
def test_hostile_html_strips_in_linear_time(opener: str) -> None:
    import time

    from disinfo_clf.text.textio import strip_tags

    html = "<p>Kept text</p>" + opener * (400_000 // len(opener))
    started = time.perf_counter()
    assert strip_tags(html) == "Kept text"
    assert time.perf_counter() - started < 2.0  # quadratic stripping took 60 s on 400 KB of <script>


def test_tag_stripping_keeps_text_blocks_and_entities() -> None:
    from disinfo_clf.text.textio import strip_tags

    html = ("<head><title>T</title><body><h1>Title</h1><p>One &amp; two &lt;b&gt; a < b</p><script>if (a<b) x()"
            "</SCRIPT ><!-- note --><div>Three<br/>Four</div><style>p{}</style><svg><text>no</text></svg>End")
    assert strip_tags(html) == "Title\nOne & two <b> a < b\nThree\nFour\nEnd"


def test_an_output_inside_an_input_folder_is_not_read_and_resume_works(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("NATO moves troops east.", encoding="utf-8")
    (docs / "b.txt").write_text("Ukraine is run by Nazis, they say.", encoding="utf-8")
    out = docs / "scores.txt"
    first = score([docs], out, model=FakeModel())
    assert first.records == 2
    again = score([docs], out, model=FakeModel(), resume=True)  # the folder's fingerprint did not grow
    assert again.records == 2 and again.resumed == 2
    replaced = score([docs], out, model=FakeModel(), overwrite=True)
    assert replaced.records == 2 and len(out.read_text(encoding="utf-8").splitlines()) == 2


def _fake_export(folder: Path) -> Path:
    import json

    from disinfo_clf.encoders import onnx

    folder.mkdir()
    model = folder / onnx._model_name(True)
    model.write_bytes(b"graph" * 100)
    (folder / "model.data").write_bytes(bytes(range(256)) * 4096)
    sidecar = {"recipe": onnx.RECIPE, "weights_sha256": "w" * 64, "data_file": "model.data",
               "files": onnx._file_records(model, "model.data")}
    model.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return model


def test_damaged_onnx_export_is_detected_even_with_size_and_mtime_kept(tmp_path: Path) -> None:
    from disinfo_clf.encoders import onnx

    model = _fake_export(tmp_path / "onnx")
    assert onnx._valid(model, "w" * 64)
    data = tmp_path / "onnx" / "model.data"
    before = data.stat()
    with data.open("r+b") as stream:  # same size, other content, mtime put back
        stream.seek(1000)
        stream.write(b"\0" * 4000)
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert onnx._valid(model, "w" * 64)  # this process checked it already, and size and mtime did not change
    onnx._VERIFIED.clear()  # a new process hashes it again
    assert not onnx._valid(model, "w" * 64)
    data.write_bytes(b"x")  # a changed size is seen at once
    assert not onnx._valid(model, "w" * 64)


def test_onnx_export_without_checksums_gets_them_recorded(tmp_path: Path) -> None:
    import json

    from disinfo_clf.encoders import onnx

    model = _fake_export(tmp_path / "onnx")
    sidecar = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    del sidecar["files"]
    model.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    assert onnx._valid(model, "w" * 64)
    recorded = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))["files"]
    assert recorded["model.data"]["size"] == 256 * 4096


@pytest.mark.slow
def test_doctor_names_a_damaged_index_and_how_to_rebuild(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from disinfo_clf import doctor
    from disinfo_clf.cli import main
    from disinfo_clf.matching.index import INDEX_DIR

    damaged = Path(shutil.copytree(INDEX_DIR, tmp_path / "index"))
    cases = damaged / "cases.json"
    cases.write_text(cases.read_text(encoding="utf-8").replace('"claim": "', '"claim": "X', 1), encoding="utf-8")
    monkeypatch.setattr(doctor, "INDEX_DIR", damaged)
    monkeypatch.setattr(doctor, "_models", lambda: [])  # the shipped models: covered by the NaN tests above
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  case index" in out and "scripts/build_index.py" in out


def test_a_resume_with_other_batch_settings_is_refused_and_the_same_settings_give_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"id": "{i}", "text": "NATO expanded east, item {i}."}}\n' for i in range(5)))
    out = tmp_path / "out.jsonl"
    score([source], out, model="fast", batch_size=2, show_progress_bar=False)
    whole = out.read_bytes()
    out.write_bytes(b"".join(whole.splitlines(keepends=True)[:2]))
    with pytest.raises(ScoringError, match="batch size was 2, now 3"):
        score([source], out, model="fast", batch_size=3, resume=True, show_progress_bar=False)
    score([source], out, model="fast", batch_size=2, resume=True, show_progress_bar=False)
    assert out.read_bytes() == whole
