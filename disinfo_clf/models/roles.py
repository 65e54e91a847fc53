"""Telling claim sentences from debunk sentences: the shipped role model, debunk wording and a
monotone claim-then-debunk switch used by document segmentation."""
from __future__ import annotations

import functools
import logging
from typing import Protocol, Sequence

import numpy as np

from ..resources import ROLE_MODEL_DIR
from ..text.sentences import has_debunk_cue
from .combined import read_proba
from .meta import TextClassifier
from .registry import load_classifier

logger = logging.getLogger(__name__)

CUE_PROBABILITY = 0.9
SPLIT_PENALTY = 0.5
"""Cost, in sentences of agreement, of switching from claim to debunk inside a line."""


class RoleModel(Protocol):
    """What segmentation needs from a claim-vs-debunk model (a :class:`TextClassifier` fits)."""

    @property
    def labels(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class CueRoleModel:
    """A stand-in role model that reads only the debunk wording (:func:`has_debunk_cue`); used when none is shipped."""

    labels = ["claim", "debunk"]

    def predict_proba(self, texts: Sequence[str], *args: object, **kwargs: object) -> np.ndarray:
        """``[[p_claim, p_debunk], ...]``: 0.9 debunk for a sentence with a cue, else 0.3."""
        debunk = np.array([CUE_PROBABILITY if has_debunk_cue(t) else 0.3 for t in texts], dtype=float)
        return np.stack([1.0 - debunk, debunk], axis=1).reshape(len(texts), 2)


@functools.lru_cache(maxsize=1)
def role_model() -> TextClassifier:
    """The shipped claim-vs-debunk sentence model at ``ROLE_MODEL_DIR``, loaded once."""
    return load_classifier(ROLE_MODEL_DIR)


@functools.lru_cache(maxsize=1)
def default_role_model() -> RoleModel:
    """:func:`role_model` when it is shipped, else a :class:`CueRoleModel` (with one warning)."""
    if not ROLE_MODEL_DIR.is_dir():
        logger.warning(
            "no role model at %s: telling claims from debunks in headless documents by cue words only",
            ROLE_MODEL_DIR,
        )
        return CueRoleModel()
    return role_model()


def role_input(sentence: str, context: str) -> str:
    """What the role model reads for one sentence: the sentence, then the paragraph it stands in.

    Isolated sentences are often ambiguous (a debunk restates facts in the claim's words); the
    paragraph tells a claim summary from a disproof. Training and every caller use this form.
    """
    return f"{sentence}\n{context}"


def debunk_probabilities(sentences: Sequence[str], model: RoleModel, contexts: Sequence[str] | None = None,
                         embeddings: np.ndarray | None = None, languages: Sequence[str | None] | None = None,
                         alone: bool = False) -> np.ndarray:
    """P(debunk) per sentence, read with its paragraph from ``contexts`` (default: the sentence
    as its own paragraph), raised to :data:`CUE_PROBABILITY` where a debunk cue occurs.
    ``embeddings`` (of the sentences, from the role model's encoder) and ``languages`` go to models
    that read them. ``alone``: every part reads the bare sentence, which is what ``embeddings`` of
    the sentences hold (prediction's windows), instead of :func:`role_input`."""
    labels = list(model.labels)
    if "debunk" not in labels:
        raise ValueError(
            f"role model labels {labels} have no 'debunk': pass a claim-vs-debunk model "
            "(labels ['claim', 'debunk']) as role_model="
        )
    if not sentences:
        return np.zeros(0)
    # A loaded backend would draw a progress bar per document; plain role models take only texts.
    kwargs = {"show_progress_bar": False} if isinstance(model, TextClassifier) else {}
    contexts = sentences if contexts is None else contexts
    inputs = list(sentences) if alone else [role_input(s, c) for s, c in zip(sentences, contexts)]
    if isinstance(model, TextClassifier):
        proba = read_proba(model, inputs, embeddings=embeddings, languages=languages, show_progress_bar=False)
    else:
        proba = np.asarray(model.predict_proba(inputs, **kwargs), dtype=float)
    p = proba[:, labels.index("debunk")]
    langs = languages if languages is not None else [None] * len(sentences)
    cues = np.array([has_debunk_cue(s, lang) for s, lang in zip(sentences, langs)], dtype=bool)
    return np.where(cues, np.maximum(p, CUE_PROBABILITY), p)


def claim_debunk_switch(
    p_debunk: Sequence[float], groups: Sequence[int], *, min_claim: int = 0, split_penalty: float = SPLIT_PENALTY
) -> int:
    """The number ``k`` of leading claim sentences (the rest are debunk) that best agrees with
    ``p_debunk``: it maximises the expected number of sentences labelled as the model says, and
    switching between two sentences of the same group (line) costs ``split_penalty``."""
    p = np.asarray(p_debunk, dtype=float)
    n = len(p)
    claim_gain = np.concatenate([[0.0], np.cumsum(1.0 - p)])
    debunk_gain = np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]])
    score = claim_gain + debunk_gain
    for k in range(1, n):
        if groups[k - 1] == groups[k]:
            score[k] -= split_penalty
    score[: min(min_claim, n)] = -np.inf
    # On a tie, the later switch: text with no debunk evidence reads as claim.
    return n - int(np.argmax(score[::-1]))
