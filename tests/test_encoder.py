"""The encoder backend on a tiny encoder built from our own corpus (no download, CPU only)."""
from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub must never be needed

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from disinfo_clf.config import EncoderConfig  # noqa: E402
from disinfo_clf.models.meta import MULTI_LABEL, SINGLE_LABEL, ModelDirectoryError  # noqa: E402
from disinfo_clf.models.registry import load_classifier  # noqa: E402
from disinfo_clf.models.encoder import EncoderClassifier, class_weights, load_pretrained_encoder  # noqa: E402

KEYWORDS = ["ukraine", "nato"]
MAX_LENGTH = 32


def keyword_labels(text: str) -> list[float]:
    """Multi-hot target: does the text contain each keyword as a word?"""
    words = set(re.findall(r"\w+", text.lower()))
    return [float(k in words) for k in KEYWORDS]


def quick_config(model_dir: Path, **changes: object) -> EncoderConfig:
    """Settings that learn the keyword task in a few seconds on a CPU."""
    settings: dict = dict(
        model_name_or_path=str(model_dir), local_files_only=True, max_length=MAX_LENGTH,
        learning_rate=1e-3, warmup_ratio=0.1, num_train_epochs=1, max_steps=90,
        per_device_train_batch_size=32, eval_steps=30, use_cpu=True,
    )
    settings.update(changes)
    return EncoderConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, titles: list[str]) -> Path:
    """A tiny encoder fine-tuned on 'which keywords does this title contain', saved."""
    rows = [{"text": t, "labels": keyword_labels(t), "id": str(i)} for i, t in enumerate(titles[:3600])]
    train = datasets.Dataset.from_list(rows[:3000])
    validation = datasets.Dataset.from_list(rows[3000:])
    run = tmp_path_factory.mktemp("encoder-run")
    clf = EncoderClassifier.train(
        train, validation, labels=KEYWORDS, problem_type=MULTI_LABEL, config=quick_config(tiny_encoder_dir),
        seed=7, output_dir=run, label_names={"ukraine": "Ukraine", "nato": "NATO"},
    )
    assert not (run / "checkpoints").exists(), "training must not leave checkpoints behind"
    clf.set_thresholds([0.4, 0.6])
    clf.save_pretrained(run / "model")
    return run / "model"


@pytest.mark.slow
def test_tiny_encoder_loads_through_the_auto_classes(tiny_encoder_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder_dir, num_labels=3, problem_type=MULTI_LABEL,
        id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2},
    )
    encoded = tokenizer(["NATO troops in Ukraine", "Kyiv"], padding=True, return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(int(encoded["input_ids"][0, 0])) == "[CLS]"
    assert model(**encoded).logits.shape == (2, 3)
    assert (tiny_encoder_dir / "model.safetensors").is_file()


@pytest.mark.slow
def test_trained_model_learns_and_reloads_with_identical_probabilities(trained_dir: Path, titles: list[str]) -> None:
    held_out = titles[-400:]
    clf = EncoderClassifier.from_pretrained(trained_dir)
    probs = clf.predict_proba(held_out)
    assert probs.shape == (400, 2)
    targets = np.array([keyword_labels(t) for t in held_out])
    # The keyword task is learnable: texts with the keyword score higher than texts without.
    assert probs[targets[:, 0] == 1, 0].mean() > probs[targets[:, 0] == 0, 0].mean() + 0.3

    again = load_classifier(trained_dir)
    np.testing.assert_allclose(again.predict_proba(held_out), probs, rtol=0, atol=1e-6)
    assert again.meta.thresholds == [0.4, 0.6]
    assert again.meta.label_names == {"ukraine": "Ukraine", "nato": "NATO"}
    assert again.meta.backend == "encoder" and again.meta.max_length == MAX_LENGTH


@pytest.mark.slow
def test_transformers_pipeline_reads_the_model_directory(trained_dir: Path) -> None:
    from transformers import pipeline

    texts = ["NATO expands towards Russia", "The weather in Moscow is fine"]
    scores = pipeline("text-classification", model=str(trained_dir), top_k=None)(texts)
    ours = EncoderClassifier.from_pretrained(trained_dir).predict_proba(texts)
    for row, expected in zip(scores, ours):
        by_label = {item["label"]: item["score"] for item in row}
        assert sorted(by_label) == sorted(KEYWORDS)
        np.testing.assert_allclose([by_label[k] for k in KEYWORDS], expected, atol=1e-5)


@pytest.mark.slow
def test_batching_by_length_keeps_each_text_its_own_scores(trained_dir: Path, titles: list[str]) -> None:
    clf = EncoderClassifier.from_pretrained(trained_dir)
    texts = titles[:37] + ["", "NATO"]
    batched = clf.decision_function(texts, batch_size=8)
    one_by_one = np.vstack([clf.decision_function([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


@pytest.mark.slow
def test_long_text_is_windowed_not_cut(trained_dir: Path) -> None:
    clf = EncoderClassifier.from_pretrained(trained_dir)
    filler = " ".join(["The weather in Moscow was mild and the markets were calm."] * 20)
    assert len(clf.tokenizer(filler)["input_ids"]) > 5 * MAX_LENGTH
    without, with_end = clf.predict_proba([filler, filler + " NATO troops entered Ukraine."])
    assert with_end[KEYWORDS.index("ukraine")] > without[KEYWORDS.index("ukraine")] + 0.3


@pytest.mark.slow
def test_a_new_head_loads_without_a_transformers_load_report(tiny_encoder_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    tokenizer, model = load_pretrained_encoder(str(tiny_encoder_dir), local_files_only=True, labels=["a", "b"],
                                               problem_type=MULTI_LABEL)
    assert model.config.num_labels == 2
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "MISSING" not in err


def test_missing_encoder_gives_advice(tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError, match="build-tiny-encoder"):
        load_pretrained_encoder(str(tmp_path / "no-such-model"), local_files_only=True)
    with pytest.raises(ModelDirectoryError, match="local_files_only: false"):
        load_pretrained_encoder("no-such-org/no-such-model", local_files_only=True, labels=["a"], problem_type=MULTI_LABEL)


@pytest.mark.slow
def test_incomplete_model_directory_names_the_missing_file(trained_dir: Path, tmp_path: Path) -> None:
    for name in ("disinfo_clf.json", "config.json"):
        (tmp_path / name).write_bytes((trained_dir / name).read_bytes())
    with pytest.raises(ModelDirectoryError, match="model.safetensors"):
        EncoderClassifier.from_pretrained(tmp_path)


def test_class_weights_favour_rare_labels_within_bounds() -> None:
    multi = class_weights([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]] + [[1.0, 0.0]] * 100, MULTI_LABEL, 2)
    assert multi[1] > multi[0] and float(multi.max()) <= 20.0
    single = class_weights([0, 0, 0, 1], SINGLE_LABEL, 2)
    assert single[1] > single[0]


@pytest.mark.slow
def test_single_label_training_pools_windows_by_mean(tiny_encoder_dir: Path, titles: list[str], tmp_path: Path) -> None:
    rows = [{"text": t, "labels": int("ukraine" in t.lower())} for t in titles[:1600]]
    clf = EncoderClassifier.train(
        datasets.Dataset.from_list(rows[:1300]), datasets.Dataset.from_list(rows[1300:]),
        labels=["other", "ukraine"], problem_type=SINGLE_LABEL, config=quick_config(tiny_encoder_dir, max_steps=40),
        seed=3, output_dir=tmp_path, task="role",
    )
    probs = clf.predict_proba(["Ukraine is a failed state " * 30, "Nothing to see here"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert clf.meta.problem_type == SINGLE_LABEL and clf.meta.task == "role"


def test_windows_pool_by_max_for_narratives_and_by_mean_for_roles() -> None:
    from disinfo_clf.models.encoder import _pool_windows

    windows = np.array([[1.0, -2.0], [3.0, -4.0], [0.5, 0.5]], dtype=np.float32)
    owner = np.array([0, 0, 1])
    np.testing.assert_allclose(_pool_windows(windows, owner, 2, MULTI_LABEL), [[3.0, -2.0], [0.5, 0.5]])
    np.testing.assert_allclose(_pool_windows(windows, owner, 2, SINGLE_LABEL), [[2.0, -3.0], [0.5, 0.5]])
