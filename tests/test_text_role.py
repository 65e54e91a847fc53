"""Role at the level of the text: whole real debunks read as debunks, claims stay claims, and
``role_score`` is the calibrated probability (no softmax sharpening on the way)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from disinfo_clf import load_model
from disinfo_clf.models.combined import CombinedClassifier, Part
from disinfo_clf.models.meta import ModelDirectoryError, ModelMeta
from disinfo_clf.models.roles import debunk_probabilities
from disinfo_clf.models.text_role import FEATURES, TEXT_ROLE_FILE, TextRoleHead, debunk_cues
from disinfo_clf.resources import DATA_DIR, DEFAULT_MODEL_DIR
from disinfo_clf.text.sentences import text_windows


class _FixedPart:
    """A role part answering fixed P(debunk) per text."""

    labels = ["claim", "debunk"]

    def __init__(self, p: dict[str, float]) -> None:
        self.p = p

    def predict_proba(self, texts: Sequence[str], **_: object) -> np.ndarray:
        d = np.array([self.p[t] for t in texts])
        return np.stack([1 - d, d], axis=1)


def _combined(problem_type: str, labels: list[str], parts: list, calibration: dict | None = None) -> CombinedClassifier:
    meta = ModelMeta(backend="combined", task="role", labels=labels, problem_type=problem_type)  # type: ignore[arg-type]
    return CombinedClassifier(meta, [Part("a", "a"), Part("b", "b")], parts, {"other": [0.5, 0.5]}, calibration)


class _FixedLabels:
    """A multi-label part answering fixed probabilities per text."""

    labels = ["a", "b"]

    def __init__(self, p: dict[str, list[float]]) -> None:
        self.p = p

    def predict_proba(self, texts: Sequence[str], **_: object) -> np.ndarray:
        return np.array([self.p[t] for t in texts])


def test_a_multi_label_mix_is_turned_into_logits_once() -> None:
    texts = ["x", "y"]
    first = _FixedLabels({"x": [0.9, 0.2], "y": [1e-9, 0.5]})
    second = _FixedLabels({"x": [0.7, 0.4], "y": [1e-9, 0.5]})
    model = _combined("multi_label_classification", ["a", "b"], [first, second], {"other": [1.5, -0.3]})
    mixed = np.array([[0.8, 0.3], [1e-9, 0.5]])
    expected = 1.5 * (np.log(np.clip(mixed, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(mixed, 1e-6, 1 - 1e-6))) - 0.3
    logits = model.decision_function(texts, languages=["de", "de"])
    np.testing.assert_allclose(logits, expected, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(texts, languages=["de", "de"]), 1 / (1 + np.exp(-expected)), rtol=1e-12)
    np.testing.assert_allclose(model.mixed_probabilities(texts, languages=["de", "de"]), 1 / (1 + np.exp(-expected)),
                               rtol=1e-12)


def test_a_single_label_mix_reads_back_as_its_probability_not_sharpened() -> None:
    texts = ["x", "y", "z"]
    model = _combined("single_label_classification", ["claim", "debunk"],
                      [_FixedPart({"x": 0.6, "y": 0.8, "z": 0.1}), _FixedPart({"x": 0.6, "y": 0.8, "z": 0.3})],
                      {"other": [1.3, -0.2]})
    mixed = model.mixed_probabilities(texts, languages=["en"] * 3)
    proba = model.predict_proba(texts, languages=["en"] * 3)
    np.testing.assert_allclose(proba, mixed, atol=1e-9)
    plain = _combined("single_label_classification", ["claim", "debunk"],
                      [_FixedPart({"x": 0.6, "y": 0.8, "z": 0.1})] * 2)
    np.testing.assert_allclose(plain.predict_proba(texts, languages=["en"] * 3)[:, 1], [0.6, 0.8, 0.1], atol=1e-6)


def _head(**changes: object) -> TextRoleHead:
    n = len(FEATURES)
    base = dict(features=list(FEATURES), coef=[0.5] * n, intercept=0.1, center=[0.0] * n, scale=[1.0] * n,
                platt_a=1.5, platt_b=-0.3)
    return TextRoleHead(**{**base, **changes})  # type: ignore[arg-type]


def test_text_role_head_round_trips_and_keeps_a_one_window_text_its_window_probability(tmp_path: Path) -> None:
    head = _head()
    loaded = TextRoleHead.load(head.save(tmp_path))
    p = np.array([0.2, 0.9, 0.3, 0.7])
    lengths = np.array([100.0, 200.0, 50.0, 80.0])
    cues = np.array([False, True, False, False])
    out = loaded.probability(p, lengths, cues, [1, 3])
    assert out[0] == pytest.approx(0.2)
    z = np.log(p[1:] / (1 - p[1:]))
    wmean = float(np.sum(p[1:] * lengths[1:]) / lengths[1:].sum())
    x = np.array([z.mean(), np.log(wmean / (1 - wmean)), z.max(), z.min(), z[0], z[-1], 1 / 3, 1.0])
    expected = 1 / (1 + np.exp(-(1.5 * (x @ np.full(len(FEATURES), 0.5) + 0.1) - 0.3)))
    assert out[1] == pytest.approx(expected)


def test_a_malformed_text_role_head_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / TEXT_ROLE_FILE
    path.write_text(json.dumps({"features": [], "coef": [1.0]}), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match=TEXT_ROLE_FILE):
        TextRoleHead.load(path)
    with pytest.raises(ModelDirectoryError, match="features expected"):
        _head(coef=[1.0])


def _records(source: str, kind: str, unit: str, split: str, n: int) -> list[str]:
    with (DATA_DIR / "realtext" / f"{source}.jsonl").open(encoding="utf-8") as fh:
        recs = [r for r in map(json.loads, fh) if r["kind"] == kind and r["unit"] == unit and r["split"] == split]
    return [r["text"] for r in sorted(recs, key=lambda r: r["id"])[:n]]


@pytest.fixture(scope="session")
def model():
    return load_model()


@pytest.mark.slow
def test_the_default_model_has_a_text_role_head(model) -> None:
    assert model.text_role is not None
    assert (DEFAULT_MODEL_DIR / "role" / TEXT_ROLE_FILE).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("source,lang", [("factograph", "ru"), ("polygraph", "en"), ("eufactcheck", "en")])
def test_whole_real_debunks_read_as_debunk(model, source: str, lang: str) -> None:
    # Factograph is a test source (never trained on); Polygraph and EUfactcheck texts of the dev split
    # chose the head (their train split fitted it).
    split = "test" if source == "factograph" else "dev"
    texts = _records(source, "debunk", "text", split, 10)
    assert len(texts) == 10
    preds = model.predict(texts)
    assert all(p.language == lang for p in preds)
    assert sum(p.role == "debunk" for p in preds) >= 9, [(p.role, p.role_score) for p in preds]
    # Before the text-level head these read as claim: whole Polygraph debunks 14% debunk on dev.


@pytest.mark.slow
def test_claims_still_read_as_claim(model) -> None:
    fr = _records("afp_factuel", "claim", "claim", "test", 20)
    with (DATA_DIR / "multilingual" / "claims_test.jsonl").open(encoding="utf-8") as fh:
        rows = [r for r in map(json.loads, fh) if r["role"] == "claim"]
    by_lang = {lang: [r["text"] for r in rows if r["lang"] == lang][:10] for lang in ("de", "ru", "uk")}
    # A long claim text (several claims of one language) must not read as debunk for its length.
    long_ru = "\n\n".join(by_lang["ru"][:10])
    assert len(text_windows(long_ru)) > 1
    texts = fr + [t for ts in by_lang.values() for t in ts] + [long_ru]
    preds = model.predict(texts)
    claims = sum(p.role == "claim" for p in preds)
    assert claims >= 0.85 * len(texts), [(t[:40], p.role, p.role_score) for t, p in zip(texts, preds)]
    assert preds[-1].role == "claim"


@pytest.mark.slow
def test_role_score_is_the_calibrated_probability(model) -> None:
    texts = _records("factograph", "debunk", "text", "test", 2) + _records("afp_factuel", "claim", "claim", "test", 3)
    preds = model.predict(texts)
    windows = [text_windows(t) for t in texts]
    flat = [t[s:e] for t, ws in zip(texts, windows) for s, e in ws]
    langs = [p.language for p, ws in zip(preds, windows) for _ in ws]
    emb = model.embed(flat)
    window_p = debunk_probabilities(flat, model.roles, embeddings=emb, languages=langs, alone=True)
    lengths = np.array([e - s for ws in windows for s, e in ws], dtype=float)
    p = model.text_role.probability(window_p, lengths, debunk_cues(flat, langs), [len(ws) for ws in windows], emb)
    got = np.array([pr.role_score if pr.role == "debunk" else 1 - pr.role_score for pr in preds])
    np.testing.assert_allclose(got, p, atol=1e-6)
    # The window role model's probabilities are the calibrated mix itself (no softmax sharpening).
    mixed = model.roles.mixed_probabilities(flat, langs, embeddings=emb)
    np.testing.assert_allclose(model.roles.predict_proba(flat, embeddings=emb, languages=langs), mixed, atol=1e-6)
