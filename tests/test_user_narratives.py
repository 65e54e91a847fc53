"""Narratives of one's own: narrative files with examples, and the few-shot head that scores them."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.models.prototypes import PrototypeConfig, PrototypeHead, load_negative_texts
from disinfo_clf.narrative_files import NarrativeFileError, load_user_narratives, user_narratives
from disinfo_clf.resources import RESOURCES
from disinfo_clf.taxonomy import Narrative, Taxonomy, load_taxonomy

WAR_FILE = RESOURCES / "narratives" / "war-2022.yaml"

GOOD = """\
narratives:
  - id: climate-hoax
    name: Climate change is a hoax
    description: Global warming is invented to tax and control people.
    examples:
      - Climate change is a hoax cooked up by governments to raise taxes.
      - The global warming scare is a scam so elites can control how we live.
    counter_examples:
      - Scientists confirmed that 2024 was the warmest year on record.
"""


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_adds_its_narratives_to_the_shipped_ones(tmp_path: Path) -> None:
    taxonomy = load_user_narratives(write(tmp_path, GOOD))
    shipped = load_taxonomy().ids
    assert taxonomy.ids == [*shipped, "climate-hoax"]
    (mine,) = user_narratives(taxonomy)
    assert mine.examples[0] == "Climate change is a hoax cooked up by governments to raise taxes."
    assert mine.counter_examples == ("Scientists confirmed that 2024 was the warmest year on record.",)
    assert mine.to_dict()["examples"] == list(mine.examples)


def test_replace_true_makes_the_file_stand_alone(tmp_path: Path) -> None:
    taxonomy = load_user_narratives(write(tmp_path, "replace: true\n" + GOOD))
    assert taxonomy.ids == ["climate-hoax"]
    # A standalone file may reuse a shipped id.
    reused = load_user_narratives(write(tmp_path, "replace: true\n" + GOOD.replace("climate-hoax", "mh17")))
    assert reused.ids == ["mh17"]


def test_a_list_of_narratives_or_a_taxonomy_is_accepted() -> None:
    mine = Narrative("grain-theft", "Ukraine steals grain", "d", examples=("Kyiv sells stolen grain.",))
    assert load_user_narratives([mine]).ids[-1] == "grain-theft"
    assert load_user_narratives([mine], replace=True).ids == ["grain-theft"]
    whole = Taxonomy([mine])
    assert load_user_narratives(whole) is whole
    with pytest.raises(NarrativeFileError, match="field 'examples': no examples"):
        load_user_narratives([Narrative("x-y", "X", "d")])


def test_shipped_taxonomy_keeps_its_layout() -> None:
    narrative = load_taxonomy().narratives[0]
    assert not narrative.has_examples
    assert set(narrative.to_dict()) == {"id", "name", "description", "keywords", "cues"}


def test_the_war_file_loads_and_adds_nine_narratives() -> None:
    taxonomy = load_user_narratives(WAR_FILE)
    war = user_narratives(taxonomy)
    assert [n.id for n in war] == [
        "war-west-provoked", "war-ukraine-nazis", "war-atrocities-staged", "war-nuclear-escalation",
        "war-russia-winning", "war-sanctions-backfire", "war-west-tired", "war-weapons-black-market",
        "war-zelensky-illegitimate"]
    for narrative in war:
        assert len(narrative.examples) >= 10 and len(narrative.counter_examples) >= 3
        assert any(re.search("[а-яіїє]", t.lower()) for t in narrative.examples), narrative.id


BAD = [
    # (file text, line, field, words in the message)
    (GOOD + GOOD.split("narratives:\n")[1], 10, "id", "appears twice (first on line 2)"),
    (GOOD.replace("climate-hoax", "nato-aggression"), 2, "id", "already used by"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n", 2, "examples", "no examples"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples: []\n", 5, "examples", "no examples"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples:\n      - fine\n      - ''\n",
     7, "examples", "empty text"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples:\n      -\n", 6, "examples", "empty text"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples: [a]\n    exemples: [b]\n",
     6, "exemples", "unknown field"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples: one text\n", 5, "examples", "must be a list"),
    ("narratives:\n  - id: x-y\n    name: X\n    description: d\n    examples:\n      - Note: a colon\n",
     6, "examples", "put the text in"),
    ("narratives:\n  - id: X Y\n    name: X\n    description: d\n    examples: [a]\n", 2, "id", "lowercase slug"),
    ("narratives:\n  - id: x-y\n    name: 42\n    description: d\n    examples: [a]\n", 3, "name", "non-empty string"),
    ("replace: yes please\nnarratives: []\n", 1, "replace", "true or false"),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), BAD)
def test_a_bad_file_names_file_line_and_field(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NarrativeFileError) as caught:
        load_user_narratives(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(path) in message and f"line {line}," in message and f"field {field!r}" in message, message
    assert words in message


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_user_narratives(tmp_path / "nope.yaml")


def _hashing_embed(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-words embedding: enough to test the head's bookkeeping fast."""
    out = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_head_labels_shapes_and_calibration_targets() -> None:
    taxonomy = load_user_narratives(WAR_FILE)
    negatives = load_negative_texts()
    head = PrototypeHead(taxonomy, _hashing_embed, negatives=negatives)
    assert head.labels == [n.id for n in user_narratives(taxonomy)]
    assert head.names["war-west-provoked"] == "The West provoked the war"
    assert np.array_equal(head.thresholds, np.full(9, 0.5))
    probs = head.predict_proba(_hashing_embed(["hello", "world", "again"]))
    assert probs.shape == (3, 9) and ((probs >= 0) & (probs <= 1)).all()
    for diagnostics in head.diagnostics.values():  # out-of-fold share of ordinary text above threshold
        assert diagnostics["ordinary_above_threshold"] <= PrototypeConfig().target_fpr + 0.01
    with pytest.raises(ValueError, match="expected \\(n, 64\\)"):
        head.predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no narrative has examples"):
        PrototypeHead(load_taxonomy(), _hashing_embed, negatives=negatives)


CROSS_LINGUAL = """\
replace: true
narratives:
  - id: climate-hoax
    name: Climate change is a hoax
    description: Global warming is invented by elites to tax and control people.
    examples:
      - Climate change is a hoax cooked up by governments to raise taxes.
      - The global warming scare is a scam so the elites can control how we live.
      - There is no climate crisis; the temperature data are faked by activists.
      - CO2 does not warm the planet, the whole climate story is a lie to sell green energy.
      - Climate alarmists invent disasters so that politicians can ban cars and meat.
  - id: towers-5g-illness
    name: 5G towers make people ill
    description: 5G mobile networks cause cancer, illness or the pandemic.
    examples:
      - 5G towers are frying our brains and causing cancer in children.
      - The coronavirus symptoms are really radiation sickness from the new 5G masts.
      - Since they installed 5G in our town, people suffer headaches and birds drop dead.
      - Telecom companies hide that 5G radiation damages the immune system.
      - Tear down the 5G antennas before they make the whole population sick.
"""

STATED = {  # language: (text, narrative it states)
    "ru": [("Изменение климата — это выдумка правительств, чтобы вводить новые налоги.", "climate-hoax"),
           ("Вышки 5G вызывают рак и головные боли, это скрывают от людей.", "towers-5g-illness")],
    "de": [("Der Klimawandel ist ein Schwindel, erfunden, um uns mit Steuern zu kontrollieren.", "climate-hoax"),
           ("Die 5G-Masten machen die Menschen krank und verursachen Krebs.", "towers-5g-illness")],
    "uk": [("Глобальне потепління — це обман еліт, щоб контролювати наше життя.", "climate-hoax"),
           ("Вежі 5G шкодять здоров'ю і викликають рак у дітей.", "towers-5g-illness")],
    "fr": [("Le réchauffement climatique est une arnaque inventée pour augmenter les impôts.", "climate-hoax"),
           ("Les antennes 5G rendent les gens malades et provoquent des cancers.", "towers-5g-illness")],
}
ORDINARY = {
    "ru": ["Завтра в Москве ожидается небольшой снег и до минус пяти градусов.",
           "Городская библиотека продлила часы работы до девяти вечера."],
    "de": ["Die Stadtverwaltung hat den Haushalt für das kommende Jahr beschlossen.",
           "Am Wochenende wird in Bayern sonniges Wetter erwartet."],
    "uk": ["У Львові відкрили новий дитячий майданчик біля школи.",
           "Футбольний клуб підписав контракт з новим тренером."],
    "fr": ["La mairie a annoncé la rénovation de la piscine municipale.",
           "Le marché de Noël ouvrira ses portes vendredi soir."],
}


@pytest.fixture(scope="session")
def real_embed():
    from disinfo_clf import load_model

    model = load_model()
    return model.embed


@pytest.mark.slow
def test_a_narrative_defined_in_english_is_found_in_other_languages(tmp_path: Path, real_embed) -> None:
    head = PrototypeHead(load_user_narratives(write(tmp_path, CROSS_LINGUAL)), real_embed)
    assert head.build_seconds < 60
    for lang, stated in STATED.items():
        texts = [t for t, _ in stated] + ORDINARY[lang]
        probs = head.predict_proba(real_embed(texts))
        for row, (text, narrative) in zip(probs, stated):
            k = head.labels.index(narrative)
            assert row.argmax() == k, (lang, text, row)
            assert row[k] >= 0.5, (lang, text, row)
            assert row[k] > probs[len(stated):, k].max(), (lang, text)  # ranked above ordinary text
        assert (probs[len(stated):] < 0.5).all(), (lang, probs[len(stated):])
