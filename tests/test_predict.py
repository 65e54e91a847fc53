"""predict(): the embedded default model on the seeds, list/single symmetry, long texts, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from disinfo_clf import Prediction, load_model, predict
from disinfo_clf.cli import main
from disinfo_clf.data import parse_file
from disinfo_clf.models.meta import ModelDirectoryError
from disinfo_clf.resources import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, seed_paths

# (seed file prefix, case index) -> the narrative its debunk names
SEED_NARRATIVES = {
    ("000", 0): "colour-revolutions",
    ("001", 0): "colour-revolutions",
    ("001", 1): "nato-aggression",
    ("001", 2): "deep-state-global-elite",
    ("001", 3): "nazi-ukraine-baltics",
    ("002", 1): "colour-revolutions",
    ("003", 0): "colour-revolutions",
    ("004", 1): "colour-revolutions",
}


@pytest.fixture(scope="module")
def seed_cases() -> dict[tuple[str, int], object]:
    return {(path.name[:3], i): case for path in seed_paths() for i, case in enumerate(parse_file(path))}


def test_every_debunked_seed_claim_gets_the_narrative_its_debunk_names(seed_cases: dict) -> None:
    for key, expected in SEED_NARRATIVES.items():
        pred = predict(seed_cases[key].claim)
        assert expected in pred.narratives, (key, pred.scores)
        assert pred.scores[expected] >= 0.5
        assert pred.role == "claim", key


def test_seed_claims_without_debunk_are_tagged_too(seed_cases: dict) -> None:
    assert predict(seed_cases[("004", 0)].claim).narrative == "ukraine-aggressor"
    assert predict(seed_cases[("002", 0)].claim).narrative == "nato-aggression"


def test_seed_debunk_paragraphs_come_back_as_debunk(seed_cases: dict) -> None:
    debunks = [case.debunk for case in seed_cases.values() if case.debunk]
    assert len(debunks) == len(SEED_NARRATIVES)
    for pred in predict(debunks):
        assert pred.role == "debunk" and pred.role_score >= 0.5


def test_a_list_gives_a_list_in_order_and_a_string_one_prediction() -> None:
    texts = [
        "NATO promised Gorbachev not to expand east and broke its word.",
        "The Skripal poisoning in Salisbury was staged by British intelligence.",
        "Crimea voted freely to rejoin Russia; there was no annexation.",
    ]
    batch = predict(texts)
    assert isinstance(batch, list) and len(batch) == 3
    assert [p.narrative for p in batch] == ["nato-aggression", "skripal-poisoning", "crimea-russian"]
    assert all(isinstance(p, Prediction) for p in batch)
    singles = [predict(t) for t in texts]
    for one, many in zip(singles, batch):  # alone or in a list: the same prediction (up to float noise)
        assert (one.narrative, one.narratives, one.role, one.relevant) == (many.narrative, many.narratives, many.role, many.relevant)
        assert list(one.scores.values()) == pytest.approx(list(many.scores.values()), abs=1e-6)
        assert [m.id for m in one.matches] == [m.id for m in many.matches]
    assert predict(tuple(texts)) == batch


def test_prediction_fields_and_json() -> None:
    text = "Western special services organised the protests in Kazakhstan, a new colour revolution."
    pred = predict(text)
    data = json.loads(json.dumps(pred.to_dict()))
    assert set(data) == {"narrative", "name", "score", "scores", "narratives", "role", "role_score", "evidence", "language",
                         "relevance", "relevant", "matches"}
    assert data["narrative"] == "colour-revolutions" and data["name"]
    assert list(pred.scores)[0] == pred.narrative and pred.scores[pred.narrative] == pred.score
    assert list(pred.scores.values()) == sorted(pred.scores.values(), reverse=True)
    assert len(pred.scores) == len(load_model().labels)
    assert 0.0 <= pred.score <= 1.0 and 0.5 <= pred.role_score <= 1.0
    assert text[pred.evidence.start:pred.evidence.end] == pred.evidence.text
    assert pred.language == "en"
    assert len(predict(text, top_k=3).scores) == 3
    assert pred.narrative in str(pred) and "evidence" in str(pred)


def test_language_is_detected_offline() -> None:
    assert predict("Запад пытался организовать цветную революцию в Казахстане.").language == "ru"
    assert predict("L'OTAN a promis de ne pas s'étendre vers l'est et a menti.").language == "fr"


def test_long_text_is_windowed_and_the_evidence_points_at_the_narrative() -> None:
    filler = "The city council met on Tuesday to discuss the new budget for roads and schools. " * 60
    claim = "The MH17 Boeing was shot down by a Ukrainian fighter jet, not by a Russian Buk missile."
    text = filler + claim + " " + filler
    pred = predict(text)
    assert len(text) > 9000
    assert pred.narrative == "mh17" and pred.score > 0.5
    assert claim in pred.evidence.text
    assert text[pred.evidence.start:pred.evidence.end] == pred.evidence.text


def test_a_fact_check_article_is_a_debunk() -> None:
    article = (
        "Pro-Kremlin outlets claim that NATO promised not to expand eastward. This claim is false. "
        "There is no evidence of any such promise: no treaty or agreement contains it, and Mikhail Gorbachev "
        "himself said in 2014 that NATO expansion was not discussed at all. This is a recurring "
        "pro-Kremlin disinformation narrative about NATO enlargement."
    )
    pred = predict(article)
    assert pred.role == "debunk"
    assert pred.narrative == "nato-aggression"


@pytest.mark.parametrize(
    "texts, error, message",
    [
        (None, TypeError, "texts is None"),
        (["fine text", None], TypeError, r"texts\[1\] is NoneType"),
        (["fine text", b"bytes"], TypeError, r"texts\[1\] is bytes.*decode"),
        ("", ValueError, "text is empty"),
        (["ok", "   "], ValueError, r"texts\[1\] is empty"),
    ],
)
def test_bad_input_names_the_position(texts: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        predict(texts)  # type: ignore[arg-type]


def test_missing_or_corrupt_model_directory_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelDirectoryError, match="does not exist"):
        predict("text", model=tmp_path / "nowhere")
    moved = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "moved")  # a combined model without its parts
    with pytest.raises(ModelDirectoryError, match="narratives-e5"):
        predict("text", model=moved)
    broken = tmp_path / "broken"
    shutil.copytree(FAST_MODEL_DIR, broken)
    (broken / "linear.safetensors").unlink()
    with pytest.raises(ModelDirectoryError, match="linear.safetensors"):
        predict("text", model=broken)
    (broken / "disinfo_clf.json").write_text("{not json")
    with pytest.raises(ModelDirectoryError, match="disinfo_clf.json"):
        predict("text", model=broken)


def test_loaded_models_are_cached() -> None:
    assert load_model() is load_model()
    assert load_model(DEFAULT_MODEL_DIR) is load_model()
    model = load_model()
    assert predict("NATO expands east.", model=model).narrative == predict("NATO expands east.").narrative


def test_cli_predict_text_json_and_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["predict", "--json", "NATO broke its promise not to expand east."]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["narrative"] == "nato-aggression" and record["model"]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("The Skripal poisoning was staged by the British."))
    assert main(["predict"]) == 0
    out = capsys.readouterr().out
    assert "skripal-poisoning" in out and "role:" in out


@pytest.mark.slow
def test_encoder_model_directory_predicts_through_the_same_call(tiny_model_dir: Path) -> None:
    texts = ["NATO troops gather on Russia's borders.", "The Skripal case was staged."]
    preds = predict(texts, model=tiny_model_dir)
    assert len(preds) == 2
    labels = load_model(tiny_model_dir).labels
    assert all(set(p.scores) == set(labels) for p in preds)
    assert all(p.role in ("claim", "debunk") for p in preds)
    assert (tiny_model_dir / "role" / "disinfo_clf.json").is_file()
