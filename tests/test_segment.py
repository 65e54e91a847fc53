"""Sentence splitting and claim/debunk/other segmentation, on the seed documents and on any text.

The ``role_model`` fixture is the shipped role model when it exists, else the cue-word stand-in,
so these tests hold for both.
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disinfo_clf.data.cases import SPAN_LABELS, Span
from disinfo_clf.data.documents import segment
from disinfo_clf.models.roles import CueRoleModel, RoleModel, claim_debunk_switch, role_model as load_role_model
from disinfo_clf.text.sentences import split_sentences
from disinfo_clf.resources import ROLE_MODEL_DIR, seed_paths

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {path.name[:3]: path.read_text(encoding="utf-8") for path in seed_paths()}
SEED_LINES = sorted({line for text in SEEDS.values() for line in text.splitlines()})


def _load_accuracy_script():
    spec = importlib.util.spec_from_file_location("seed_accuracy", ROOT / "scripts" / "seed_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def role_model() -> RoleModel:
    return load_role_model() if ROLE_MODEL_DIR.is_dir() else CueRoleModel()


class ConstantModel:
    """A role model that says the same for every sentence, and counts its calls."""

    labels = ["claim", "debunk"]

    def __init__(self, p_debunk: float) -> None:
        self.p_debunk, self.calls = p_debunk, 0

    def predict_proba(self, texts: Sequence[str], *args: object, **kwargs: object) -> np.ndarray:
        self.calls += 1
        return np.tile([1 - self.p_debunk, self.p_debunk], (len(texts), 1))


def assert_partition(text: str, offsets: list[tuple[int, int]]) -> None:
    """Offsets in order, disjoint, trimmed, within one line, covering every non-space character."""
    covered = [False] * len(text)
    previous_end = 0
    for start, end in offsets:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        assert len(piece.splitlines()) == 1, f"sentence crosses a line break: {piece!r}"
        covered[start:end] = [True] * (end - start)
        previous_end = end
    assert all(c or ch.isspace() for c, ch in zip(covered, text))


def label_of(spans: list[Span], prefix: str) -> str:
    matches = [span.label for span in spans if span.text.startswith(prefix)]
    assert matches, f"no sentence starts with {prefix!r}"
    return matches[0]


# --- split_sentences ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith went to the U.S. State Department. He paid 2.5 dollars. Then he left!",
         ["Mr. Smith went to the U.S. State Department.", "He paid 2.5 dollars.", "Then he left!"]),
        ('He said "Stop." Then he went (slowly.) Why? Because.',
         ['He said "Stop."', "Then he went (slowly.)", "Why?", "Because."]),
        ("J. R. R. Tolkien wrote e.g. No. 5 and more. In 1990. It ended",
         ["J. R. R. Tolkien wrote e.g. No. 5 and more.", "In 1990.", "It ended"]),
        ("Soros & Co. networks failed. World War II. Lithuania refused.",
         ["Soros & Co. networks failed.", "World War II.", "Lithuania refused."]),
        ("A line without a stop\nAnother line\r\n\r\n  indented one.  ", ["A line without a stop", "Another line", "indented one."]),
        ("Gorbachev said “It was not discussed.” To further cement this.",
         ["Gorbachev said “It was not discussed.”", "To further cement this."]),
        ("它很好。我们走吧！", ["它很好。", "我们走吧！"]),
        ("", []),
        (" \n\t\n", []),
    ],
)
def test_split_sentences_examples(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in split_sentences(text)] == expected


def test_split_sentences_rejects_bytes() -> None:
    with pytest.raises(TypeError, match="str"):
        split_sentences(b"Some text.")  # type: ignore[arg-type]


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_split_sentences_partitions_any_text(text: str) -> None:
    assert_partition(text, split_sentences(text))


# --- segment: invariants -----------------------------------------------------------------------


def assert_segmentation(text: str, spans: list[Span]) -> None:
    assert_partition(text, [(s.start, s.end) for s in spans])
    assert [(s.start, s.end) for s in spans] == split_sentences(text), "every sentence exactly once"
    for span in spans:
        assert span.label in SPAN_LABELS
        assert text[span.start:span.end] == span.text


@pytest.mark.parametrize("key", sorted(SEEDS))
def test_segment_covers_every_seed_sentence_once(key: str, role_model: RoleModel) -> None:
    assert_segmentation(SEEDS[key], segment(SEEDS[key], role_model=role_model))


@given(st.text())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_segment_partitions_any_text(role_model: RoleModel, text: str) -> None:
    assert_segmentation(text, segment(text, role_model=role_model))


@given(st.lists(st.sampled_from(SEED_LINES) | st.text(max_size=40), max_size=25), st.sampled_from(["\n", "\n\n", "\r\n"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_segment_partitions_shuffled_seed_layouts(role_model: RoleModel, lines: list[str], sep: str) -> None:
    text = sep.join(lines)
    assert_segmentation(text, segment(text, role_model=role_model))


def test_segment_of_blank_text_is_empty() -> None:
    assert segment("") == []
    assert segment(" \n\t \n") == []


def test_segment_rejects_bytes() -> None:
    with pytest.raises(TypeError, match=r"decode\('utf-8'\)"):
        segment(SEEDS["000"].encode("utf-8"))  # type: ignore[arg-type]


# --- segment: labels on the seeds ---------------------------------------------------------------


def test_headings_titles_and_metadata_are_other(role_model: RoleModel) -> None:
    spans = segment(SEEDS["001"], role_model=role_model)
    for prefix in ("Disinfo: Kazakhstan", "Summary", "Disproof", "publication/media", "• Reported in", "• Keywords", "see more"):
        assert label_of(spans, prefix) == "other", prefix
    spans = segment(SEEDS["003"], role_model=role_model)
    assert label_of(spans, "Colour revolutions") == "other"
    assert label_of(spans, "• Outlet") == "other"


def test_titled_seed_claim_and_debunk(role_model: RoleModel) -> None:
    spans = segment(SEEDS["000"], role_model=role_model)
    assert label_of(spans, "After Ukraine, the same Western scriptwriters") == "claim"
    assert label_of(spans, "But this was not possible thanks to Russia") == "claim"
    assert label_of(spans, "Recurring pro-Kremlin disinformation narrative") == "debunk"
    assert label_of(spans, "Mobilisations were organised") == "debunk"
    assert label_of(spans, "See other examples") == "other"


def test_site_boilerplate_is_other(role_model: RoleModel) -> None:
    spans = segment(SEEDS["003"], role_model=role_model)
    for prefix in ("Related disinfo cases", "Cases in the EUvsDisinfo database", "This does not necessarily imply",
                   "Your opinion matters!", "Data Protection Information", "Subscribe to the Disinfo Review",
                   "Your weekly update", "The Disinformation Review is sent", "See Mailchimp", "See also the statement"):
        assert label_of(spans, prefix) == "other", prefix
    assert label_of(spans, "However, the narrative is not based on facts") == "debunk"
    for key in ("002", "004"):
        spans = segment(SEEDS[key], role_model=role_model)
        assert label_of(spans, "See also the statement") == "other"
        assert label_of(spans, "Read also related") == "other"


@pytest.mark.parametrize("key", ["002", "004"])
def test_headless_seed_claims_first_then_debunk(key: str, role_model: RoleModel) -> None:
    spans = [s for s in segment(SEEDS[key], role_model=role_model) if s.label != "other"]
    labels = [s.label for s in spans]
    assert labels[0] == "claim" and labels[-1] == "debunk"
    assert labels == sorted(labels), "claims come first, then the debunk"
    assert label_of(spans, "This claim advances an emerging pro-Kremlin") == "debunk"
    assert label_of(spans, "As the Guardian reports") == "debunk"


def test_seed_004_first_line_claim_last_lines_debunk(role_model: RoleModel) -> None:
    text = SEEDS["004"]
    spans = segment(text, role_model=role_model)
    lines = text.splitlines()
    assert label_of(spans, "Ukraine continues to stack military equipment") == "claim"
    assert label_of(spans, "The real goal is to reduce Russia") == "claim"
    for line in lines[3:8]:
        assert {s.label for s in spans if s.text in line} == {"debunk"}, line[:60]


def test_structure_beats_the_model() -> None:
    """Titled documents are split by their headings and layout; a model is never consulted."""
    for key in ("000", "001", "003"):
        says_debunk, says_claim = ConstantModel(0.99), ConstantModel(0.01)
        assert segment(SEEDS[key], role_model=says_debunk) == segment(SEEDS[key], role_model=says_claim)
        assert says_debunk.calls == says_claim.calls == 0


def test_injected_model_decides_headless_text() -> None:
    text = "Russia is encircled by NATO bases.\nThe West plans to attack.\nNATO has no such plans."
    assert {s.label for s in segment(text, role_model=ConstantModel(0.05))} == {"claim"}
    labels = [s.label for s in segment(text, role_model=ConstantModel(0.95))]
    assert labels == ["claim", "debunk", "debunk"], "a multi-line document starts with its claim"


def test_role_model_without_debunk_label_is_refused() -> None:
    class Wrong(ConstantModel):
        labels = ["positive", "negative"]

    with pytest.raises(ValueError, match="debunk"):
        segment("Some claim.\nSome debunk.", role_model=Wrong(0.5))


def test_claim_debunk_switch_prefers_line_boundaries() -> None:
    # Sentences 0-1 on line 0, 2-3 on line 1: a weak debunk signal inside line 0 is not enough.
    assert claim_debunk_switch([0.1, 0.6, 0.9, 0.9], [0, 0, 1, 1]) == 2
    assert claim_debunk_switch([0.1, 0.99, 0.99, 0.99], [0, 0, 0, 0]) == 1
    assert claim_debunk_switch([0.9, 0.9], [0, 1], min_claim=1) == 1
    assert claim_debunk_switch([], []) == 0


def test_segment_is_fast_on_every_seed(role_model: RoleModel) -> None:
    segment(SEEDS["004"], role_model=role_model)  # warm-up: first model use
    for text in SEEDS.values():
        start = time.perf_counter()
        segment(text, role_model=role_model)
        assert time.perf_counter() - start < 0.5


# --- accuracy against hand-labelled gold --------------------------------------------------------


def test_seed_accuracy_against_gold(role_model: RoleModel) -> None:
    script = _load_accuracy_script()
    gold = script.load_gold()
    assert {record["file"] for record in gold} == {path.name for path in seed_paths()}
    report = script.seed_accuracy(gold, role_model)
    structured = [name for name in report["per_file"] if name[:3] in ("000", "001", "003")]
    assert all(report["per_file"][name] == 1.0 for name in structured), report["errors"]
    assert report["accuracy"] >= 0.9, report["errors"]


def test_accuracy_script_writes_report(tmp_path: Path) -> None:
    script = _load_accuracy_script()
    out = tmp_path / "accuracy.json"
    assert script.main([str(out), "--cue-model"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["sentences"] == 148 and 0.0 <= report["accuracy"] <= 1.0
    assert report["role_model"] == "cue words"
