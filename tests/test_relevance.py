"""The relevance flag: its model file, its threshold, and how predictions and score rows use it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.matching.casefile import IndexedCase
from disinfo_clf.matching.index import CaseIndex
from disinfo_clf.prediction import Model, load_model
from disinfo_clf.matching.relevance import (FEATURES, RELEVANCE_DIR, Relevance, RelevanceModel, RelevanceModelError,
                                   language_group, tune_threshold, word_count)
from disinfo_clf.matching.ordinary_bank import ORDINARY_FEATURES, ORDINARY_FILE, ordinary_features
from disinfo_clf.scoring import NO_KNOWN_NARRATIVE, ScoreSummary, score_batch
from disinfo_clf.feeds.readers import Record
from hashing_encoder import HashingEncoder

CLAIMS = ["NATO promised Gorbachev not to expand east and broke its word",
          "The West staged a coup in Kyiv in 2014",
          "Ukraine is run by Nazis who persecute Russian speakers",
          "The coronavirus was made in an American laboratory in Georgia"]


def _model(dim: int) -> RelevanceModel:
    """A hand-set model: relevant when the best similarity is high (probe off)."""
    n = len(FEATURES) + 1
    coef = [0.0] * n
    coef[0] = 10.0  # top1, standardised around 0.8
    return RelevanceModel(probe_coef=[0.0] * dim, probe_intercept=0.0, coef=coef, intercept=0.0,
                          mean=[0.8] + [0.0] * (n - 1), scale=[0.1] + [1.0] * (n - 1),
                          calibration={"en": [1.0, 0.0], "other": [1.0, 0.0]}, threshold={"en": 0.5, "other": 0.5},
                          encoder_fingerprint="f" * 64)


@pytest.fixture(scope="module")
def fake_relevance() -> Relevance:
    encoder = HashingEncoder()
    cases = [IndexedCase(id=f"https://cases.example/{i}", url=f"https://cases.example/{i}", title=c, claim=c,
                         date="2020-01-0" + str(i + 1), narratives=("nato-aggression",)) for i, c in enumerate(CLAIMS)]
    cases += [IndexedCase(id=f"filler-{i}", url=None, title=f"filler {i}", claim=f"zebra{i} quokka{i} wombat{i}", date=None)
              for i in range(12)]
    return Relevance(_model(encoder.dim), CaseIndex.build(cases, encoder), encoder=encoder)


@pytest.fixture(scope="module")
def gated_model(fake_relevance: Relevance) -> Model:
    base = load_model("fast")
    return Model(base.narratives, base.roles, "gated@1", relevance=fake_relevance)


def test_model_files_round_trip_and_bad_files_are_refused(tmp_path: Path) -> None:
    model = _model(8)
    model.save(tmp_path / "rel", metrics={"heldout": {}})
    assert RelevanceModel.load(tmp_path / "rel") == model
    assert json.loads((tmp_path / "rel" / "metrics.json").read_text()) == {"heldout": {}}
    data = json.loads((tmp_path / "rel" / "relevance.json").read_text())
    for broken, message in (({**data, "coef": data["coef"][:-1]}, "features"),
                            ({**data, "intercept": math.inf}, "finite"),
                            ({**data, "threshold": {"en": 0.5}}, "groups"),
                            ({**data, "format_version": 99}, "format version")):
        (tmp_path / "rel" / "relevance.json").write_text(json.dumps(broken).replace("Infinity", "1e999"))
        with pytest.raises(RelevanceModelError, match=message):
            RelevanceModel.load(tmp_path / "rel")
    with pytest.raises(RelevanceModelError, match="missing"):
        RelevanceModel.load(tmp_path / "nowhere")


def _bank_model(dim: int = 8, rows: int = 12) -> RelevanceModel:
    """A fitted model reading the ordinary bank (random, separable data)."""
    rng = np.random.default_rng(3)
    bank = rng.normal(size=(rows, dim)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    emb = rng.normal(size=(60, dim))
    y = np.r_[np.ones(30), np.zeros(30)].astype(int)
    case = rng.normal(size=(60, len(FEATURES))) + y[:, None]
    X = np.column_stack([case, ordinary_features(case[:, 0], emb, bank)])
    return RelevanceModel.fit(X, emb, y, ordinary=bank)


def test_a_model_reading_the_ordinary_bank_round_trips_and_bad_banks_are_refused(tmp_path: Path) -> None:
    model = _bank_model()
    assert model.features == FEATURES + ORDINARY_FEATURES and model.reads_ordinary
    model.save(tmp_path / "rel")
    loaded = RelevanceModel.load(tmp_path / "rel")
    assert loaded == model and loaded.ordinary.dtype == np.float32
    assert np.allclose(loaded.ordinary, model.ordinary, atol=1e-3)  # stored as float16
    emb = np.random.default_rng(4).normal(size=(5, 8))
    case = np.random.default_rng(5).normal(size=(5, len(FEATURES)))
    # Serving computes the bank features from the embeddings: the same logits as precomputed ones.
    full = np.column_stack([case, ordinary_features(case[:, 0], emb, loaded.ordinary)])
    assert np.allclose(loaded.window_logits(case, emb), loaded.window_logits(full, emb))
    from safetensors.numpy import save_file
    bank_path = tmp_path / "rel" / ORDINARY_FILE
    for tensors, message in (({"embeddings": np.ones((12, 7), np.float16)}, "shape"),
                             ({"embeddings": np.full((12, 8), np.nan, np.float32)}, "non-finite"),
                             ({"embeddings": np.ones((12, 8), np.int32)}, "float16 or float32"),
                             ({"vectors": np.ones((12, 8), np.float16)}, "one tensor")):
        save_file(tensors, str(bank_path))
        with pytest.raises(RelevanceModelError, match=message) as err:
            RelevanceModel.load(tmp_path / "rel")
        assert ORDINARY_FILE in str(err.value)
    bank_path.unlink()
    with pytest.raises(RelevanceModelError, match="ordinary.safetensors is missing"):
        RelevanceModel.load(tmp_path / "rel")


def test_ordinary_features_leave_out_excluded_bank_rows() -> None:
    bank = np.eye(6, dtype=np.float32)
    emb = bank[:2]
    free = ordinary_features(np.array([0.9, 0.9]), emb, bank)
    assert np.allclose(free[:, 0], 1.0) and np.allclose(free[:, 2], -0.1)
    exclude = np.zeros((2, 6), dtype=bool)
    exclude[0, 0] = exclude[1, 1] = True  # a window never meets its own text while fitting
    assert np.allclose(ordinary_features(np.array([0.9, 0.9]), emb, bank, exclude=exclude)[:, 0], 0.0)


def test_threshold_keeps_the_false_positive_rate_within_its_bound() -> None:
    rng = np.random.default_rng(0)
    p = np.r_[rng.uniform(0.3, 1.0, 500), rng.uniform(0.0, 0.7, 200)]
    y = np.r_[np.ones(500), np.zeros(200)]
    t = tune_threshold(p, y, 0.05)
    assert (p[y == 0] >= t).mean() <= 0.05 and (p[y == 0] >= t).sum() == 10
    assert (p[y == 1] >= t).mean() > 0.5


def test_fit_and_calibrate_learn_a_separable_flag() -> None:
    rng = np.random.default_rng(1)
    n = 400
    y = np.r_[np.ones(n), np.zeros(n)].astype(int)
    features = rng.normal(size=(2 * n, len(FEATURES))) + y[:, None] * 1.5
    emb = rng.normal(size=(2 * n, 16)) + y[:, None] * 0.5
    model = RelevanceModel.fit(features, emb, y)
    logits = model.text_logits(features, emb, np.arange(2 * n), 2 * n)
    languages = ["en", "de"] * n
    model.calibrate(logits, y, languages, max_false_positive_rate=0.05)
    p = model.calibrated(logits, languages)
    flags = model.flags(p, languages)
    assert flags[y == 1].mean() > 0.9 and flags[y == 0].mean() <= 0.06
    assert set(model.threshold) == {"en", "other"} and language_group(None) == "other"


def test_words_count_cjk_and_bare_names() -> None:
    assert word_count("Russia") == 1 and word_count("The city council approved the plan.") == 6
    assert word_count("俄罗斯") == 1.5


def test_predictions_are_gated_by_relevance(gated_model: Model) -> None:
    relevant, ordinary = gated_model.predict([CLAIMS[0], "Add the flour and stir until smooth."])
    assert relevant.relevant is True and relevant.relevance > 0.5
    assert relevant.matches[0].url == "https://cases.example/0" and len(relevant.matches) == 3
    assert ordinary.relevant is False and ordinary.relevance < 0.5 and ordinary.narratives == []
    assert str(ordinary).startswith("no known narrative") and not str(relevant).startswith("no known")
    data = json.loads(json.dumps(relevant.to_dict()))
    assert data["matches"][0]["narratives"] == ["nato-aggression"] and data["relevant"] is True


def test_a_model_without_relevance_says_none() -> None:
    pred = load_model("fast").predict(["NATO promised not to expand east"])[0]
    assert pred.relevance is None and pred.relevant is None and pred.matches == []
    assert not str(pred).startswith("no known narrative")


def test_score_rows_carry_relevance_and_the_summary_counts_flagged_records(gated_model: Model) -> None:
    records = [Record("a", CLAIMS[1], "in"), Record("b", "Heavy rain is expected on Friday.", "in"),
               Record("c", "Preheat the oven to 200C.", "in")]
    rows = score_batch(records, gated_model, {})
    assert [r["relevant"] for r in rows] == [True, False, False]
    assert rows[0]["matches"][0]["url"] == "https://cases.example/1" and isinstance(rows[1]["relevance"], float)
    summary = ScoreSummary()
    for row in rows:
        summary.add(row)
    assert summary.narratives[NO_KNOWN_NARRATIVE] == 2 and sum(summary.narratives.values()) == 3
    table = summary.format_table().split("narrative", 1)[1]
    assert table.splitlines()[1].startswith(NO_KNOWN_NARRATIVE)


def test_the_shipped_model_was_fitted_on_the_shipped_index() -> None:
    relevance = Relevance.load()  # refuses a model fitted with other encoder weights than the index's
    assert relevance.model.encoder_fingerprint == relevance.index.meta.encoder_fingerprint != ""
    assert 0 < relevance.model.threshold["en"] < 1 and 0 < relevance.model.threshold["other"] < 1
    metrics = json.loads((RELEVANCE_DIR / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["heldout"]["all"]["n"] > 2500 and set(metrics["heldout"]["by_language"]) >= {"en", "ru", "uk", "de"}


@pytest.mark.slow
def test_the_shipped_flag_on_ordinary_text_and_claims() -> None:
    """Held-out ordinary items (never tuned on) are not flagged; catalogued-style claims are."""
    relevance = Relevance.load(RELEVANCE_DIR)
    base = load_model("fast")
    model = Model(base.narratives, base.roles, "shipped-relevance", relevance=relevance)
    ordinary_path = Path(__file__).parents[1] / "disinfo_clf/resources/data/multilingual/ordinary.jsonl"
    heldout = [json.loads(line) for line in ordinary_path.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in heldout if r["split"] == "heldout" and r["kind"] in ("news_sentence", "offtopic")][:24]
    preds = model.predict(texts + ["The city council approved plans for a new bicycle lane downtown."])
    assert sum(p.relevant for p in preds) <= 2, [(p.relevance, t) for p, t in zip(preds, texts) if p.relevant]
    claims = model.predict(["NATO promised Gorbachev not to expand east and broke its word.",
                            "Запад организовал государственный переворот на Украине в 2014 году.",
                            "Die Ukraine wird von Neonazis regiert, die Russischsprachige verfolgen."])
    assert all(p.relevant for p in claims), [p.relevance for p in claims]
    assert all(p.narratives == [] for p in preds if not p.relevant)
