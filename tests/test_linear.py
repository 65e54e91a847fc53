"""The TF-IDF + logistic regression backend: learning, probabilities, and its model directory."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from disinfo_clf.config import LinearConfig
from disinfo_clf.models.meta import MULTI_LABEL, SINGLE_LABEL, ModelDirectoryError, TextClassifier
from disinfo_clf.models.registry import load_classifier
from disinfo_clf.cues import CueMatcher
from disinfo_clf.models import features
from disinfo_clf.models.features import CharWbTransform, WordNgramTransform, fast_transform
from disinfo_clf.models.linear import LinearClassifier

LABELS = ["gas", "nato", "vaccine"]
TOPICS = {
    "gas": ["pipeline", "gas", "energy", "nordstream", "prices"],
    "nato": ["nato", "troops", "alliance", "military", "bases"],
    "vaccine": ["vaccine", "virus", "laboratory", "pandemic", "injection"],
}
FILLER = "the a of in report says officials claim today new west europe country people news".split()
CONFIG = LinearConfig(min_df=1, max_features=5000, C=4.0, max_iter=500)
MODEL_FILES = ["config.json", "disinfo_clf.json", "vocabulary.json", "linear.safetensors"]


def make_corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts made of filler words plus topic words of each label they carry."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, len(LABELS))) < 0.3).astype(int)
    texts = []
    for row in targets:
        words = list(rng.choice(FILLER, size=8))
        for label, present in zip(LABELS, row):
            if present:
                words += list(rng.choice(TOPICS[label], size=2))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, targets


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    train_texts, train_targets = make_corpus(300, seed=0)
    test_texts, test_targets = make_corpus(150, seed=1)
    return train_texts, train_targets, test_texts, test_targets


@pytest.fixture(scope="module")
def model(corpus) -> LinearClassifier:
    texts, targets, _, _ = corpus
    fitted = LinearClassifier.fit(
        texts, targets, labels=LABELS, problem_type=MULTI_LABEL, config=CONFIG, seed=0,
        label_names={"gas": "Gas blackmail"},
    )
    fitted.meta.calibration = {"method": "platt", "a": [0.5, 0.8, 1.2], "b": [0.1, -0.2, 0.0]}
    fitted.meta.thresholds = [0.4, 0.5, 0.6]
    return fitted


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("linear")
    model.save_pretrained(directory)
    return directory


def copy_model(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for path in saved.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_learns_synthetic_multilabel_problem(model, corpus):
    _, _, texts, targets = corpus
    assert isinstance(model, TextClassifier)
    assert model.labels == LABELS
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), len(LABELS))
    predicted = probs >= 0.5
    for j in range(len(LABELS)):
        tp = (predicted[:, j] & (targets[:, j] == 1)).sum()
        f1 = 2 * tp / (predicted[:, j].sum() + targets[:, j].sum())
        assert f1 > 0.9, LABELS[j]


def test_predict_proba_applies_the_calibration(model, corpus):
    texts = corpus[2][:5]
    logits = model.decision_function(texts)
    a, b = np.array(model.meta.calibration["a"]), np.array(model.meta.calibration["b"])
    np.testing.assert_allclose(model.predict_proba(texts), 1 / (1 + np.exp(-(a * logits + b))), rtol=1e-5)


def test_round_trip_gives_identical_probabilities_without_pickles(model, saved, corpus):
    assert sorted(p.name for p in saved.iterdir()) == sorted(MODEL_FILES)
    assert all(p.suffix in {".json", ".safetensors"} for p in saved.iterdir())
    loaded = load_classifier(saved)
    assert isinstance(loaded, LinearClassifier)
    texts = corpus[2] + ["", "completely unseen words zzz"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), rtol=0, atol=1e-6)
    assert loaded.meta == model.meta
    assert loaded.meta.label_names == {"gas": "Gas blackmail"}


def test_config_json_is_transformers_style(saved):
    config = json.loads((saved / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "gas", "1": "nato", "2": "vaccine"}
    assert config["label2id"] == {"gas": 0, "nato": 1, "vaccine": 2}
    assert config["problem_type"] == MULTI_LABEL
    assert config["model_type"] == "disinfo-linear"
    assert config["vectorizers"]["char"]["analyzer"] == "char_wb"
    assert config["vectorizers"]["word"]["ngram_range"] == list(CONFIG.word_ngram_range)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_missing_file_is_named(saved, tmp_path, name):
    directory = copy_model(saved, tmp_path)
    (directory / name).unlink()
    with pytest.raises(ModelDirectoryError, match=name.replace(".", r"\.")):
        LinearClassifier.from_pretrained(directory)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_corrupt_file_is_named(saved, tmp_path, name):
    directory = copy_model(saved, tmp_path)
    data = (directory / name).read_bytes()
    (directory / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelDirectoryError, match=name.replace(".", r"\.")):
        LinearClassifier.from_pretrained(directory)


def test_vocabulary_that_does_not_match_the_weights_is_named(saved, tmp_path):
    directory = copy_model(saved, tmp_path)
    vocabulary = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
    vocabulary["word"] = vocabulary["word"][:-1]
    (directory / "vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="vocabulary"):
        LinearClassifier.from_pretrained(directory)


def test_single_label_two_classes(tmp_path):
    texts, targets = make_corpus(200, seed=2)
    classes = targets[:, 1]  # "nato" or not
    model = LinearClassifier.fit(
        texts, classes, labels=["claim", "debunk"], problem_type=SINGLE_LABEL, config=CONFIG, seed=0, task="role"
    )
    test_texts, test_targets = make_corpus(100, seed=3)
    probs = model.predict_proba(test_texts)
    assert probs.shape == (100, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs.argmax(axis=1) == test_targets[:, 1]).mean() > 0.9
    logits = model.decision_function(test_texts)
    np.testing.assert_allclose(logits[:, 0], -logits[:, 1], atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = LinearClassifier.from_pretrained(tmp_path)
    assert loaded.meta.task == "role" and loaded.meta.problem_type == SINGLE_LABEL
    np.testing.assert_allclose(loaded.predict_proba(test_texts), probs, atol=1e-6)


def test_label_never_positive_gets_a_low_constant_and_a_warning(corpus, caplog):
    texts, targets, test_texts, _ = corpus
    targets = np.hstack([targets, np.zeros((len(texts), 1), dtype=int)])
    with caplog.at_level(logging.WARNING, logger="disinfo_clf.models.linear"):
        model = LinearClassifier.fit(
            texts, targets, labels=LABELS + ["unseen"], problem_type=MULTI_LABEL, config=CONFIG, seed=0
        )
    assert "unseen" in caplog.text
    probs = model.predict_proba(test_texts)
    assert probs[:, 3].max() < 1e-6
    assert np.isfinite(probs).all()


def test_bad_input_is_refused_clearly(model, corpus):
    texts, targets, _, _ = corpus
    with pytest.raises(ValueError, match=r"shape \(300, 3\)"):
        LinearClassifier.fit(texts, targets[:, :2], labels=LABELS, problem_type=MULTI_LABEL, config=CONFIG, seed=0)
    with pytest.raises(TypeError, match="text 1"):
        model.predict_proba(["fine", None])  # type: ignore[list-item]
    assert model.decision_function([]).shape == (0, 3)


EDGE_TEXTS = [
    "", "   ", "a", "I", "Ünïcode İstanbul ÇA ΟΔΥΣΣΕΥΣ", "tabs\tand\nnew  lines", "NATO's «troops» — 5G!", "x y z",
    "the the the nato nato", "a¨b accents: café naïve", "under_score 2020 x1 ab-cd",
]


def _assert_same_matrix(got, expected) -> None:
    """Same shape, same stored entries in the same order, same float bits."""
    got, expected = got.tocsr(), expected.tocsr()
    assert got.shape == expected.shape
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


@pytest.mark.parametrize("params", [
    {},
    {"strip_accents": "unicode", "ngram_range": (2, 4)},
    {"lowercase": False, "binary": True},
], ids=["default", "accents", "cased-binary"])
def test_fast_character_features_equal_scikit_learn(model, corpus, monkeypatch, params):
    texts = corpus[2][:20] + EDGE_TEXTS
    texts += [f"{t}\n{t}" for t in texts[:5] + EDGE_TEXTS]  # the role model's sentence-plus-context input
    vectorizer = clone(model.vectorizers["char"]).set_params(min_df=1, **params).fit(texts[::2])  # some n-grams unseen
    monkeypatch.setattr(features, "_WORD_CACHE_SIZE", 40)  # small enough to be cleared between calls
    fast = CharWbTransform(vectorizer)
    for _ in range(3):  # later passes are served from the word table, or clear it first
        _assert_same_matrix(fast(texts), vectorizer.transform(texts))
    _assert_same_matrix(fast(texts[3:4]), vectorizer.transform(texts[3:4]))
    assert fast([]).shape == (0, len(vectorizer.vocabulary_))


@pytest.mark.parametrize("params", [
    {},
    {"ngram_range": (1, 3), "stop_words": "english"},
    {"ngram_range": (2, 2), "binary": True, "strip_accents": "unicode"},
    {"token_pattern": r"(?u)\b\w+\b"},  # not the default: n-grams looked up as strings
    {"ngram_range": (1, 1), "lowercase": False},
], ids=["default", "trigrams-stop-words", "bigrams-binary", "token-pattern", "unigrams-cased"])
def test_fast_word_features_equal_scikit_learn(model, corpus, params):
    texts = corpus[2][:20] + EDGE_TEXTS
    texts += [f"{t}\n{t}" for t in texts[:5] + EDGE_TEXTS] + ["a\nb", "x y\nx y ", "\n", "ΣΑΣ\nΣΑΣ"]
    vectorizer = clone(model.vectorizers["word"]).set_params(min_df=1, **params).fit(texts[::2])
    fast = WordNgramTransform(vectorizer)
    for _ in range(2):
        _assert_same_matrix(fast(texts), vectorizer.transform(texts))
    _assert_same_matrix(fast(["", "  "]), vectorizer.transform(["", "  "]))
    assert fast([]).shape == (0, len(vectorizer.vocabulary_))


def test_fast_transform_of_other_analyzers_equals_scikit_learn(corpus):
    texts = corpus[2][:20] + EDGE_TEXTS
    for vectorizer in (TfidfVectorizer(analyzer="char", ngram_range=(2, 3)).fit(corpus[0]),
                       TfidfVectorizer(analyzer=str.split, sublinear_tf=True, binary=True, norm="l1").fit(corpus[0])):
        fast = fast_transform(vectorizer)
        _assert_same_matrix(fast(texts), vectorizer.transform(texts))
        assert fast([]).shape == (0, len(vectorizer.vocabulary_))


def test_fast_transform_needs_no_fitted_vectorizer(model, corpus):
    """A loaded model's vectorisers are not fitted: vocabulary and idf are state we own."""
    texts = corpus[2][:20] + EDGE_TEXTS
    for name, fitted in model.vectorizers.items():
        settings_only = clone(fitted).set_params(vocabulary=fitted.vocabulary_)
        fast = fast_transform(settings_only, fitted.vocabulary_, fitted.idf_)
        _assert_same_matrix(fast(texts), fitted.transform(texts))
    with pytest.raises(ValueError, match="idf must be a vector"):
        fast_transform(settings_only, fitted.vocabulary_, fitted.idf_[:-1])


CUE_TEXTS = [
    "", "NATO troops near the border", "nato-troops", "the nazis", "victory over nazism", "against nazi regime",
    "Mh17 was shot down by a buk missile", "mh 17 mh-17 mh17s", "a coup in kyiv", "the  coupled eu collapse",
    "abab ab ba b a", "x1 1x aa ab-ba", "ΟΔΥΣΣΕΥΣ Ünïcode", "b-bz", "d-dz", "NATO’s «nazis» — x\u00a0ab\u2003ba",
    "naïveism ü-über üx 12 ١٢ a\tb a\u3000b", "ab\ud800ba nato\ud800", "bax a-b",
]
EXTRA_CUES = {
    "classes": [r"a\b", r"\bba\B\w*", "(?:ab|ba)+", "a{2,3}b?", "ab??", "[ab]-[ab]"],
    "groups": ["(a)b", "x(?:1|y)", "(?P<name>x)[1-3]", "b a"],
    "tail": ["bz", "dz"],
    "overlapping": [r"(?:b-)?b\w*", r"(?:d-)??d\w*"],  # in "b-bz" both this and "bz" occur
    "unicode": [r"\w+ism", "(?i:AB)", r"ü\w*", r"\d+", r"a\sb", r"[\w-]+über", r"nato\W", "«nazis»"],
}


def _python_cues_found(label_cues: dict[str, list[str]], text: str) -> list[int]:
    """What CueMatcher must find: every cue (in label order) that Python's re finds as a whole word."""
    cues = [cue for label in label_cues for cue in label_cues[label]]
    return [i for i, cue in enumerate(cues) if re.search(rf"(?<!\w)(?:{cue})(?!\w)", text.lower())]


@pytest.mark.parametrize("extra", [{}, EXTRA_CUES], ids=["shipped", "shipped+extra"])
def test_cue_matcher_finds_every_cue_that_python_re_finds(extra):
    from disinfo_clf.data.exports import load_database_csv
    from disinfo_clf.taxonomy import load_taxonomy

    label_cues = {**extra, **{n.id: list(n.cues) for n in load_taxonomy()}}
    matcher = CueMatcher(label_cues)
    owner = [j for j, label in enumerate(label_cues) for _ in label_cues[label]]
    texts = CUE_TEXTS + [case.title for case in load_database_csv()[:800]]
    for text in texts:
        found = _python_cues_found(label_cues, text)
        assert matcher.found(text) == found, text
        assert matcher.present(text) == {owner[i] for i in found}, text
        assert matcher.signals(text) == {j: sum(owner[i] == j for i in found) for j in {owner[i] for i in found}}, text
    flags = matcher.matrix(texts, weight=2.0).toarray()
    assert set(np.unique(flags)) <= {0.0, 2.0}
    assert [set(np.flatnonzero(row)) for row in flags] == [matcher.present(t) for t in texts]
    if extra:  # a cue inside another cue's match still occurs
        assert {list(label_cues).index("tail"), list(label_cues).index("overlapping")} <= matcher.present("b-bz")


def test_cue_matcher_survives_pickling():
    """Engines that ship a model to other processes pickle it; the compiled RE2 filter is rebuilt."""
    import pickle

    matcher = CueMatcher({"nato": ["nato", r"alliance\w*"], "gas": ["nord ?stream"]})
    copy = pickle.loads(pickle.dumps(matcher))
    for text in ("NATO alliances", "Nord Stream and nato", "nothing here"):
        assert copy.found(text) == matcher.found(text)
    assert copy.present("Nordstream") == {1}


NAZI_LOOKAROUND = ("(?<!over )(?<!against )(?<!from )nazi(?:s|sm)?"
                   "(?! germany| occupation| invaders| invasion| troops| army| regime| camps?| war criminals)")


def test_cue_with_exclusions_matches_what_python_lookaround_matches():
    from disinfo_clf.cues import cue_with_exclusions
    from disinfo_clf.taxonomy import load_taxonomy

    not_after = ["over ", "against ", "from "]
    not_before = [" germany", " occupation", " invaders", " invasion", " troops", " army", " regime", " camp", " war criminals"]
    cue = cue_with_exclusions("nazi(?:s|sm)?", not_after=not_after, not_before=not_before)
    assert cue in load_taxonomy().get("nazi-ukraine-baltics").cues  # the shipped cue is this one
    matcher = CueMatcher({"nazi": [cue]})
    python = re.compile(rf"(?<!\w)(?:{NAZI_LOOKAROUND})(?!\w)")
    pieces = ["over", "against", "from", " ", " ", "nazi", "nazis", "nazism", "s", "m", "x", "-", "germany", "camp",
              "war", " criminals", "é", "\n", "r", "ainst", "ver", "o", "troops", "invaders", "occupation", "_", "’"]
    rng = np.random.default_rng(5)
    texts = ["".join(rng.choice(pieces, size=rng.integers(1, 7))) for _ in range(20000)]
    found = [bool(matcher.present(t)) for t in texts]
    assert found == [python.search(t) is not None for t in texts]
    assert 500 < sum(found) < 19500  # the sample has both kinds


def test_shipped_models_fast_features_equal_scikit_learn():
    from disinfo_clf.data.exports import load_database_csv, load_review_csv
    from disinfo_clf.resources import FAST_MODEL_DIR, ROLE_MODEL_DIR

    cases = load_review_csv()[:40]
    texts = [c.title for c in load_database_csv()[:300]] + [f"{c.claim}\n\n{c.debunk}" for c in cases]
    texts += [f"{t}\n{t}" for t in texts[-5:]]  # as the role model reads a window
    for directory in (FAST_MODEL_DIR, ROLE_MODEL_DIR):
        shipped = load_classifier(directory)
        for name, vectorizer in shipped.vectorizers.items():
            fast = fast_transform(vectorizer, shipped.vocabularies[name], shipped.idf[name])
            assert isinstance(fast, (WordNgramTransform, CharWbTransform)), name  # the shipped analyzers have a fast path
            # scikit-learn's counts, weighted as TfidfTransformer documents it (nothing fitted is loaded)
            counts = CountVectorizer(analyzer=vectorizer.analyzer, ngram_range=vectorizer.ngram_range,
                                     lowercase=vectorizer.lowercase, vocabulary=shipped.vocabularies[name]).transform(texts)
            expected = counts.astype(np.float32).tocsr()
            np.log(expected.data, expected.data)
            expected.data += 1.0
            expected.data *= shipped.idf[name][expected.indices]
            _assert_same_matrix(fast(texts), normalize(expected, copy=False))
