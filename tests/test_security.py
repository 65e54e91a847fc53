"""Model directories from untrusted hands: no code runs, no regular expression hangs, no setting
reaches scikit-learn unchecked, and no single record needs memory out of proportion to its size."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disinfo_clf.cues import CueMatcher, check_cue
from disinfo_clf.models.meta import ModelDirectoryError
from disinfo_clf.models.registry import load_classifier
from disinfo_clf.prediction import text_windows
from disinfo_clf.resources import MODELS_DIR

ROOT = Path(__file__).resolve().parents[1]
LINEAR_MODEL_DIR = MODELS_DIR / "narratives-linear"
"""The shipped TF-IDF model (refit on all periods), whichever model is the default."""
EVIL_CODE = """import os, pathlib
pathlib.Path(os.environ["EVIL_MARKER"]).write_text("the model's code ran")
from transformers import BertConfig, BertForSequenceClassification
class EvilConfig(BertConfig):
    model_type = "evil-bert"
class EvilModel(BertForSequenceClassification):
    config_class = EvilConfig
"""


def _cli(args: list[str], *, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "disinfo_clf.cli", *args], input=stdin, capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


def _encoder_folder_with_code(directory: Path, where: str) -> Path:
    """An encoder model directory that asks transformers to import its own evil.py."""
    directory.mkdir()
    meta = {"backend": "encoder", "task": "narrative", "labels": ["a", "b"], "problem_type": "multi_label_classification"}
    (directory / "disinfo_clf.json").write_text(json.dumps(meta))
    config = {"model_type": "evil-bert", "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}
    auto_map = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"}
    if where == "config.json":
        config["auto_map"] = auto_map
    (directory / "config.json").write_text(json.dumps(config))
    if where == "tokenizer_config.json":
        (directory / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]}}))
    (directory / "model.safetensors").write_bytes(b"\0" * 64)
    (directory / "evil.py").write_text(EVIL_CODE)
    return directory


def test_encoder_folder_with_custom_code_is_refused_even_when_stdin_says_yes(tmp_path: Path) -> None:
    folder = _encoder_folder_with_code(tmp_path / "model", "config.json")
    marker = tmp_path / "ran"
    result = _cli(["predict", "--model", str(folder), "NATO troops"], stdin="y\ny\n",
                  env={"EVIL_MARKER": str(marker), "HF_HOME": str(tmp_path / "hf")})
    assert not marker.exists(), "the model directory's Python code was run"
    assert result.returncode == 2 and "refusing the model directory" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json", "python file only"])
def test_every_kind_of_code_carrying_folder_is_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       where: str) -> None:
    folder = _encoder_folder_with_code(tmp_path / "model", where)
    monkeypatch.setenv("EVIL_MARKER", str(tmp_path / "ran"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    expected = "evil.py" if where == "python file only" else where
    if where != "python file only":
        (folder / "evil.py").unlink()  # the auto_map alone is refused
    with pytest.raises(ModelDirectoryError, match=expected.replace(".", r"\.")):
        load_classifier(folder)
    assert not (tmp_path / "ran").exists()


def test_transformers_is_told_never_to_trust_remote_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from disinfo_clf.models.encoder import load_pretrained_encoder

    seen: list[dict] = []

    def fake(name: str, **kwargs: object) -> object:
        seen.append(kwargs)
        return object()

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", fake)
    load_pretrained_encoder("some-org/some-model", labels=["a", "b"], problem_type="multi_label_classification")
    assert len(seen) == 2 and all(kwargs.get("trust_remote_code") is False for kwargs in seen)


@pytest.fixture()
def linear_copy(tmp_path: Path) -> Path:
    """A copy of the shipped linear model, to tamper with."""
    return Path(shutil.copytree(LINEAR_MODEL_DIR, tmp_path / "model"))


def _edit_json(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_catastrophic_cue_from_a_model_folder_matches_in_linear_time(linear_copy: Path) -> None:
    _edit_json(linear_copy / "cues.json", lambda d: d["cues"].__setitem__("mh17", ["(?:a+)+b", r"(?:\w+\s?)*$x"]))
    started = time.perf_counter()
    result = _cli(["predict", "--json", "--model", str(linear_copy), "a" * 38 + "!"], timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["narrative"] and time.perf_counter() - started < 60  # Python's re: hours
    matcher = CueMatcher({"x": ["(?:a+)+b"], "y": ["(?:a|aa)+$"]})
    started = time.perf_counter()
    assert matcher.present("a" * 20_000 + "!") == set() and matcher.present("a" * 20_000 + "b") == {0}
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("cue, problem", [
    ("(?<!not )nato", "lookaround"), ("nato(?! troops)", "lookaround"), (r"(nato)\1", "backreference"),
    ("(?>nato)", "RE2"), ("nato++", "RE2"), ("x" * 6000, "longer than"),
])
def test_cue_syntax_without_a_linear_time_match_is_refused_naming_label_and_cue(linear_copy: Path, cue: str,
                                                                                  problem: str) -> None:
    assert problem in (check_cue(cue) or "")
    _edit_json(linear_copy / "cues.json", lambda d: d["cues"]["russophobia"].append(cue))
    with pytest.raises(ModelDirectoryError, match="cues.json") as info:
        load_classifier(linear_copy)
    assert "russophobia" in str(info.value) and repr(cue)[:40] in str(info.value)


@pytest.mark.parametrize("file, change, key", [
    ("config.json", lambda c: c["vectorizers"]["word"].__setitem__("input", "filename"), "vectorizers.word.input"),
    ("config.json", lambda c: c["vectorizers"]["char"].__setitem__("token_pattern", r"(a+)+$"), "token_pattern"),
    ("config.json", lambda c: c["vectorizers"]["char"].__setitem__("ngram_range", [1, 5000]), "ngram_range"),
    ("config.json", lambda c: c["vectorizers"]["word"].__setitem__("analyzer", "char"), "analyzer"),
    ("config.json", lambda c: c["vectorizers"]["word"].__setitem__("lowercase", "yes"), "lowercase"),
    ("config.json", lambda c: c["vectorizers"]["word"].__setitem__("dtype", "float64"), "dtype"),
    ("config.json", lambda c: c.__setitem__("auto_map", {"AutoModel": "x.Y"}), "auto_map"),
    ("disinfo_clf.json", lambda m: m.__setitem__("thresholds", [2.0] * len(m["labels"])), "thresholds"),
    ("disinfo_clf.json", lambda m: m.__setitem__("calibration", {"method": "temperature", "temperature": "hot"}), "temperature"),
    ("disinfo_clf.json", lambda m: m.__setitem__("calibration", {"method": "platt", "a": [1.0], "b": [0.0]}), "calibration.a"),
    ("disinfo_clf.json", lambda m: m.__setitem__("backend", "pickle"), "backend"),
    ("disinfo_clf.json", lambda m: m.__setitem__("extra", 1), "extra"),
    ("cues.json", lambda c: c.__setitem__("weight", 1e9), "weight"),
    ("cues.json", lambda c: c["cues"].pop("mh17"), "cues"),
])
def test_settings_outside_the_allow_list_are_refused_naming_file_and_key(linear_copy: Path, file: str, change,  # type: ignore[no-untyped-def]
                                                                          key: str) -> None:
    _edit_json(linear_copy / file, change)
    with pytest.raises(ModelDirectoryError) as info:
        load_classifier(linear_copy)
    assert file in str(info.value) and key in str(info.value)


def test_text_windows_split_unbroken_text_without_losing_a_character() -> None:
    words = " ".join(f"word{i}" for i in range(400))  # ~3,600 characters, no sentence break
    unbroken = "x" * 1000
    for text in (words, unbroken, f"{words} {unbroken}. Short sentence here.\n{words}"):
        windows = text_windows(text, max_chars=400)
        assert all(0 < e - s <= 400 for s, e in windows)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(windows, windows[1:]))
        covered = {i for s, e in windows for i in range(s, e)}
        assert all(i in covered for i, char in enumerate(text) if not char.isspace())
    cut_words = [words[s:e] for s, e in text_windows(words, max_chars=400)]
    assert " ".join(cut_words) == words  # cut at white space: no word split
    assert [e - s for s, e in text_windows(unbroken, max_chars=400)] == [400, 400, 200]  # hard cuts


MEMORY_CHECK = """
import resource, sys
from disinfo_clf.prediction import load_model
from disinfo_clf.resources import MODELS_DIR
model = load_model(MODELS_DIR / "narratives-linear")
model.predict(["NATO troops are near the border."])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
words = "nato troops west coup kyiv maidan sanctions gas pipeline "
text = (words * 160_000)[:9_000_000] + ("abcdefghij" * 100_000)  # 10 MB, one line, no sentence break
prediction = model.predict([text])[0]
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, prediction.narrative)
"""


@pytest.mark.slow
def test_a_ten_megabyte_single_line_record_needs_bounded_memory() -> None:
    result = subprocess.run([sys.executable, "-c", MEMORY_CHECK], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    extra_mb, narrative = result.stdout.split()
    assert float(extra_mb) < 450, f"{extra_mb} MB for one 10 MB record"  # was ~300 bytes per character
    assert narrative
