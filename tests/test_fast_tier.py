"""The fast tier's cheap paths give the answers of the plain ones: windows, languages, predictions."""
from __future__ import annotations

import random

import numpy as np
import pytest

from disinfo_clf import load_model
from disinfo_clf.models.roles import debunk_probabilities
from disinfo_clf.text.language import detect_language, detect_languages
from disinfo_clf.text.sentences import split_sentences, text_windows

ODD_TEXTS = [
    "NATO IS EVIL AND LIES", "ABC", "Hello\nworld", "   x ", "Привет МИР", "12345", "€€€", "ÉTATS-UNIS ONT MENTI",
    "\x00", "ab\ud800ba nato", "US and EU SAY SO", "a" * 5000, "Die NATO hat versprochen, sich nicht auszudehnen.",
    "Украина — несостоявшееся государство", " ".join(["word"] * 900),
]


@pytest.fixture(scope="module")
def fast():
    return load_model("fast")


@pytest.fixture(scope="module")
def mixed(titles: list[str]) -> list[str]:
    rng = random.Random(3)
    texts = titles[:150] + ODD_TEXTS
    texts += ["\n\n".join(rng.sample(titles, 6)) for _ in range(10)]  # articles: several windows
    return texts


def test_detect_languages_answers_as_detect_language_text_by_text(mixed: list[str]) -> None:
    assert detect_languages(mixed) == [detect_language(t) for t in mixed]
    assert detect_languages([]) == []


def test_a_short_text_is_one_window_spanning_its_sentences() -> None:
    rng = random.Random(0)
    alphabet = "ab. \n\r\t\x0b\x0c\x1c\x1f\x85\u2028\u00a0\u3000。!?\"«»Mr U.S x"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        sentences = split_sentences(text)
        expected = [(sentences[0][0], sentences[-1][1])] if sentences else [(0, 0)]
        if not sentences and text.strip():  # white space only, by split_sentences' reading
            expected = [(text.index(text.strip()[0]), text.index(text.strip()[0]) + len(text.strip()))]
        assert text_windows(text, max_chars=60) == expected, repr(text)


def test_fast_tier_predictions_equal_the_text_by_text_reference(fast, mixed: list[str]) -> None:
    """Model.predict's batched paths against the plain reading: languages one by one, the window
    probabilities' maximum, labels ranked by probability, the length-weighted role."""
    got = fast.predict(mixed)
    windows = [text_windows(t) for t in mixed]
    labels, names = fast.labels, fast.narratives.meta.label_names
    thresholds = fast.narratives.meta.decision_thresholds
    for text, ws, pred in zip(mixed, windows, got):
        flat = [text[s:e] for s, e in ws]
        language = detect_language(text)
        probs = fast.narratives.predict_proba(flat)
        debunk = debunk_probabilities(flat, fast.roles, languages=[language] * len(flat), alone=True)
        text_probs = probs.max(axis=0)
        order = np.argsort(-text_probs, kind="stable")
        top = int(order[0])
        s, e = ws[int(np.argmax(probs[:, top]))]
        lengths = np.array([e - s for s, e in ws], dtype=np.float64)
        p_debunk = float((debunk * lengths).sum() / lengths.sum())
        assert pred.language == language
        assert pred.narrative == labels[top] and pred.name == names.get(labels[top], labels[top])
        assert list(pred.scores.items()) == [(labels[i], float(text_probs[i])) for i in order]
        assert pred.narratives == [labels[i] for i in order if text_probs[i] >= thresholds[i]]
        assert (pred.evidence.start, pred.evidence.end, pred.evidence.text) == (s, e, text[s:e])
        assert pred.role == ("debunk" if p_debunk >= 0.5 else "claim")
        assert pred.role_score == pytest.approx(max(p_debunk, 1 - p_debunk), abs=1e-12)
    top3 = fast.predict(mixed[:20], top_k=3)
    assert [list(p.scores) for p in top3] == [list(p.scores)[:3] for p in got[:20]]


@pytest.mark.slow
def test_duplicate_windows_are_embedded_once_with_the_same_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    from disinfo_clf.models.embedding_head import encoder_for

    model = load_model("default")
    encoder = encoder_for(model._embedding_spec())
    texts = ["NATO promised not to expand east and lied.", "The EU is collapsing.",
             "NATO promised not to expand east and lied.", "The EU is collapsing.\n\nThe EU is collapsing."]
    before = [p.to_dict() for p in model.predict(texts)]
    seen: list[str] = []
    embed = encoder.embed

    def counting(batch, **kwargs):
        seen.extend(batch)
        return embed(batch, **kwargs)

    monkeypatch.setattr(encoder, "embed", counting)
    assert [p.to_dict() for p in model.predict(texts)] == before
    assert len(seen) == len(set(seen)) == 3  # each distinct window once
