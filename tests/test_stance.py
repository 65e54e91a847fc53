"""The stance gate (issue 13): reads only flagged texts, unflags topic-only reporting, merges its adapters exactly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.matching.stance import (STANCE_FILE, StanceGate, StanceGateError, load_stance, merged_weights,
                                         save_stance)
from disinfo_clf.resources import DEFAULT_MODEL_DIR


class ScriptedGate(StanceGate):
    """A gate whose window logits come from a table (no encoder), recording what it was asked."""

    def window_logits(self, windows, batch_size=64, show_progress_bar=None):
        self.info.setdefault("asked", []).extend(windows)
        return np.array([self.info["logits"][w] for w in windows], dtype=np.float64)


def _gate(logits: dict[str, float], threshold: float = 0.0) -> ScriptedGate:
    return ScriptedGate(directory=Path("."), base_encoder="e5", base_weights_sha256="0" * 64, prefix="query: ",
                        lora_scale=2.0, head_weight=np.zeros(4, dtype=np.float32), threshold=threshold,
                        calibration=(1.0, 0.0), info={"logits": logits})


def test_gate_unflags_reporting_keeps_claims_and_never_reads_unflagged_texts():
    flat = ["claim window", "news a", "news b", "other window", "ordinary"]
    owners = np.array([0, 1, 1, 2, 3])
    logits = {"claim window": 3.0, "news a": -2.0, "news b": -4.0, "other window": 1.0, "ordinary": 5.0}
    gate = _gate(logits)
    relevance = (np.array([0.9, 0.8, 0.7, 0.2]), np.array([True, True, True, False]))
    probabilities, flags = gate.gate(flat, owners, relevance)
    assert flags.tolist() == [True, False, True, False]
    assert gate.info["asked"] == ["claim window", "news a", "news b", "other window"]  # text 3 was not flagged
    # a rejected text's relevance drops to its stance probability (best window: -2) when that is smaller
    assert probabilities[1] == pytest.approx(1 / (1 + np.exp(2.0)))
    assert probabilities[[0, 2, 3]].tolist() == [0.9, 0.7, 0.2]
    assert relevance[1].tolist() == [True, True, True, False]  # the input is not changed in place


def test_gate_reads_only_the_windows_the_narrative_heads_rank_highest():
    flat = [f"w{i}" for i in range(5)] + ["short"]
    owners = np.array([0, 0, 0, 0, 0, 1])
    # the two windows the heads rank lowest would pass the gate, but are never read
    gate = _gate({"w0": 5.0, "w1": -1.0, "w2": -2.0, "w3": 9.0, "w4": -3.0, "short": 1.0})
    priority = np.array([0.1, 0.9, 0.8, 0.05, 0.7, 0.5])
    _, flags = gate.gate(flat, owners, (np.array([0.9, 0.9]), np.array([True, True])), priority=priority)
    assert sorted(gate.info["asked"]) == ["short", "w1", "w2", "w4"]
    assert flags.tolist() == [False, True]
    _, flags = gate.gate(flat, owners, (np.array([0.9, 0.9]), np.array([True, True])))  # no priority: every window
    assert flags.tolist() == [True, True]


def test_gate_with_nothing_flagged_reads_nothing():
    gate = _gate({})
    probabilities, flags = gate.gate(["a", "b"], np.array([0, 1]), (np.array([0.1, 0.2]), np.array([False, False])))
    assert flags.tolist() == [False, False] and probabilities.tolist() == [0.1, 0.2]
    assert "asked" not in gate.info


def test_merged_weights_add_the_scaled_low_rank_product():
    rng = np.random.default_rng(0)
    base = {"layer.query.weight": rng.normal(size=(3, 4)).astype(np.float32), "layer.query.bias": np.zeros(3, np.float32)}
    a, b = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)
    merged = merged_weights(base, {"layer.query.lora_A": a, "layer.query.lora_B": b}, scale=2.0)
    np.testing.assert_allclose(merged["layer.query.weight"], base["layer.query.weight"] + 2.0 * b @ a, rtol=1e-6)
    assert merged["layer.query.bias"] is base["layer.query.bias"]
    with pytest.raises(StanceGateError, match="'layer.key'"):
        merged_weights(base, {"layer.key.lora_A": a, "layer.key.lora_B": b}, scale=2.0)
    with pytest.raises(StanceGateError, match="shape"):
        merged_weights(base, {"layer.query.lora_A": a[:, :3], "layer.query.lora_B": b}, scale=2.0)


def test_a_saved_gate_loads_back_and_a_broken_one_names_its_file(tmp_path: Path):
    spec = {"base_encoder": "intfloat/multilingual-e5-small", "base_weights_sha256": "f" * 64, "prefix": "query: ",
            "lora_scale": 2.0, "head_scale": 10.0, "threshold": 0.5, "calibration": [1.5, -0.2], "info": {"seed": 0}}
    adapters = {"encoder.layer.0.attention.self.query.lora_A": np.ones((2, 4), np.float32),
                "encoder.layer.0.attention.self.query.lora_B": np.ones((4, 2), np.float32)}
    save_stance(tmp_path / "stance", spec, adapters, np.arange(4, dtype=np.float32), 0.25)
    gate = load_stance(tmp_path)
    assert gate is not None and gate.threshold == 0.5 and gate.calibration == (1.5, -0.2) and gate.head_bias == 0.25
    assert gate.head_weight.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert gate.to_dict()["base_weights_sha256"] == "f" * 64
    path = tmp_path / "stance" / STANCE_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    with pytest.raises(StanceGateError, match=r"stance\.json: .*format_version 99.*train_stance\.py"):
        load_stance(tmp_path)
    assert load_stance(tmp_path / "nowhere") is None


def test_the_shipped_gate_names_the_encoder_it_was_trained_on():
    gate = load_stance(DEFAULT_MODEL_DIR)
    assert gate is not None, "the default model ships a stance/ part"
    assert gate.base_encoder == "intfloat/multilingual-e5-small" and len(gate.base_weights_sha256) == 64
    assert gate.head_weight.shape == (384,) and gate.threshold in (0.0, -1.0, -2.0, -3.0)
    a, b = gate.calibration
    assert a > 0  # a higher logit is a more likely claim or debunk


@pytest.mark.slow
def test_doctor_names_the_command_that_builds_the_merged_encoder(tmp_path: Path, monkeypatch):
    from disinfo_clf import doctor
    from disinfo_clf.matching import stance

    monkeypatch.setattr(stance, "cache_home", lambda: tmp_path)  # nothing merged there yet
    check = doctor._stance()
    assert not check.ok and "disinfo-clf encoder prepare" in check.detail
    assert stance.prepare_stance() is not None  # builds it (merge and int8 export) under tmp_path
    check = doctor._stance()
    assert check.ok and str(tmp_path) in check.detail
