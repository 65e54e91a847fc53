"""Sentence splitting, and telling claim sentences from debunk sentences.

:func:`split_sentences` is a fast regex splitter used everywhere a text is cut into sentences
(document segmentation, prediction windows, role datasets). The rest of the module scores
sentences as claim or debunk: the shipped role model (:func:`role_model`), EUvsDisinfo debunk
wording (:data:`DEBUNK_CUES`) and a monotone claim-then-debunk switch (:func:`claim_debunk_switch`).
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Iterator, Protocol, Sequence

import numpy as np

from ..models.base import TextClassifier, load_classifier
from ..resources import ROLE_MODEL_DIR

logger = logging.getLogger(__name__)

LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""Every line break ``str.splitlines`` knows; a sentence never crosses one."""

# Terminal punctuation plus closing quotes/brackets. Western marks end a sentence only before
# whitespace; CJK full stops need none.
_TERMINAL = re.compile(r"""(?P<mark>[.!?…؟।]+["'”’»)\]}]*(?=\s)|[。！？]+["'”’»)\]}」』]*)\s*""")
_OPENERS = "\"'“‘«„([{¿¡"
# Never end a sentence: titles and the like are always followed by more of the sentence.
_ALWAYS_ABBREVIATIONS = frozenset(
    "mr mrs ms messrs dr prof st sr jr gen col lt maj capt sgt adm cmdr brig gov sen rep pres "
    "rev hon mt ft vs cf al approx dept ca viz".split()
)
# End no sentence when a number follows ("No. 5", "Jan. 6", "pp. 12").
_NUMBER_ABBREVIATIONS = frozenset(
    "no nr nos art fig figs vol vols p pp ch sec para op ed eds ref tab "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_INITIALISM = re.compile(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}")  # U.S, e.g, i.e, т.е

_DEBUNK_WORDING = {
    "en": r"pro-Kremlin|disinformation (?:narrative|claim)|\bthis claim\b|\bthe claim is\b"
          r"|\bno (?:factual |credible )?evidence\b|\brecurring\b|\bcontrary to\b|\bdebunk|\bnot based on facts\b",
    "ru": r"прокремл|дезинформационн|\bэто утверждение|нет (?:никаких )?доказательств|без (?:каких-либо )?доказательств"
          r"|\bповторяющ|\bвопреки\b|опроверг|не основан\w* на фактах",
    "uk": r"прокремлівськ|дезінформаційн|\bце твердження|немає (?:жодних )?доказів|без (?:жодних )?доказів"
          r"|\bповторюван|\bвсупереч\b|спростов|не ґрунту\w* на фактах",
    "bg": r"прокремълск|дезинформационн|\bтова твърдение|няма (?:никакви )?доказателства|без (?:никакви )?доказателства"
          r"|\bповтарящ|\bпротивно на\b|опроверг|не се основава на факти",
    "de": r"kremlnah|kremlfreundlich|Desinformations(?:narrativ|behauptung)|\bdiese Behauptung\b|\bkeine (?:\w+ )?Beweise\b"
          r"|\bwiederkehrend|\bentgegen\b|widerleg|nicht auf Fakten",
    "fr": r"pro-?kremlin|(?:récit|narratif|affirmation) de désinformation|\bcette affirmation\b|\baucune preuve\b"
          r"|\bpas de preuve|\brécurrent|\bcontrairement à\b|\bréfut|\bdémenti|pas fondée? sur des faits",
    "es": r"pro-?kremlin|(?:narrativa|afirmación) de desinformación|\besta afirmación\b|\bno hay (?:ninguna )?prueba"
          r"|\bsin pruebas\b|\brecurrente|\bcontrariamente a\b|\bdesmient|\brefut|no se basa en hechos",
    "pl": r"prokremlowsk|(?:narracj\w*|twierdzeni\w*) dezinformacyjn|\bto twierdzenie\b|\bbrak (?:\w+ )?dowodów"
          r"|\bnie ma (?:\w+ )?dowodów|\bpowtarzając\w* się|\bwbrew\b|\bzdementow|nie opiera się na faktach",
}
"""EUvsDisinfo debunk wording, with the same phrases in the other languages the role model is
measured on (one faithful rendering each; no phrase was added from looking at evaluation data)."""
DEBUNK_CUES = re.compile("|".join(f"(?:{p})" for p in _DEBUNK_WORDING.values()), re.IGNORECASE)
"""EUvsDisinfo debunk wording: a sentence containing one is taken as debunk (p >= CUE_PROBABILITY)."""
_DEBUNK_BY_LANGUAGE = {lang: re.compile(p, re.IGNORECASE) for lang, p in _DEBUNK_WORDING.items()}


def has_debunk_cue(text: str, language: str | None = None) -> bool:
    """Whether ``text`` holds debunk wording: the English phrases and those of ``language``
    (every language's when it is unknown; one pattern is far cheaper than all eight)."""
    if language is None:
        return DEBUNK_CUES.search(text) is not None
    if _DEBUNK_BY_LANGUAGE["en"].search(text):
        return True
    own = _DEBUNK_BY_LANGUAGE.get(language)
    return own is not None and language != "en" and own.search(text) is not None
CUE_PROBABILITY = 0.9
SPLIT_PENALTY = 0.5
"""Cost, in sentences of agreement, of switching from claim to debunk inside a line."""


def line_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every line of ``text`` (blank ones too), line breaks excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in LINE_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


_LAST_TOKEN = re.compile(r"\S*$")


def _is_boundary(line: str, match: re.Match[str]) -> bool:
    """Whether the punctuation in ``match`` ends a sentence (text follows it on the line)."""
    following = line[match.end():match.end() + 8].lstrip(_OPENERS)
    if following[:1].islower():
        return False
    if match.group("mark").rstrip("\"'”’»)]}」』") != ".":
        return True
    before = line[max(0, match.start() - 40):match.start()]
    token = _LAST_TOKEN.search(before).group().lstrip(_OPENERS)  # type: ignore[union-attr]
    lower = token.lower()
    if lower in _ALWAYS_ABBREVIATIONS or _INITIALISM.fullmatch(token):
        return False
    if lower in _NUMBER_ABBREVIATIONS and following[:1].isdigit():
        return False
    return not (len(token) == 1 and token.isupper())  # an initial, as in "J. Smith"


def line_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of the single line ``text[start:end]``, whitespace trimmed, blanks dropped."""
    line = text[start:end]
    cuts = [0]
    for match in _TERMINAL.finditer(line):
        if match.end() < len(line) and _is_boundary(line, match):
            cuts.append(match.end("mark"))
    cuts.append(len(line))
    out: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:]):
        first = _NOT_BLANK.search(line, a, b)  # offsets only: a long sentence is not copied
        if first:
            last = b
            while line[last - 1].isspace():
                last -= 1
            out.append((start + first.start(), start + last))
    return out


_NOT_BLANK = re.compile(r"\S")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character offsets ``(start, end)`` of every non-blank sentence of ``text``, in order.

    Every line break ends a sentence; offsets exclude surrounding whitespace. Abbreviations
    ("Mr.", "U.S.", "e.g.", initials), decimals ("2.5") and lower-case continuations do not end
    a sentence; closing quotes and brackets after a full stop stay with their sentence.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_sentences expects str, got {type(text).__name__}; pass the text as str")
    out: list[tuple[int, int]] = []
    for start, end in line_spans(text):
        out.extend(line_sentences(text, start, end))
    return out


class RoleModel(Protocol):
    """What segmentation needs from a claim-vs-debunk model (a :class:`TextClassifier` fits)."""

    @property
    def labels(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class CueRoleModel:
    """A stand-in role model that reads only :data:`DEBUNK_CUES`; used when none is shipped."""

    labels = ["claim", "debunk"]

    def predict_proba(self, texts: Sequence[str], *args: object, **kwargs: object) -> np.ndarray:
        """``[[p_claim, p_debunk], ...]``: 0.9 debunk for a sentence with a cue, else 0.3."""
        debunk = np.array([CUE_PROBABILITY if DEBUNK_CUES.search(t) else 0.3 for t in texts], dtype=float)
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
                         embeddings: np.ndarray | None = None, languages: Sequence[str | None] | None = None) -> np.ndarray:
    """P(debunk) per sentence, read with its paragraph from ``contexts`` (default: the sentence
    alone), raised to :data:`CUE_PROBABILITY` where a debunk cue occurs. ``embeddings`` (of the
    sentences, from the role model's encoder) and ``languages`` go to models that read them."""
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
    inputs = [role_input(s, c) for s, c in zip(sentences, contexts)]
    if isinstance(model, TextClassifier):
        from ..models.combined import read_proba

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


WINDOW_CHARS = 400
"""Sentences are grouped into windows of about this many characters (training claims are this short)."""


def text_windows(text: str, max_chars: int = WINDOW_CHARS) -> list[tuple[int, int]]:
    """Consecutive sentence groups of about ``max_chars`` characters, as offsets into ``text``.

    Prediction scores every window of a text and case matching searches with every window, so a
    narrative pushed in one paragraph of a long article is found. A sentence longer than
    ``max_chars`` (text without sentence breaks) is cut into pieces of at most ``max_chars``
    characters, at white space where there is some: every character other than the white space
    between windows is in exactly one window, and no window is longer than ``max_chars``, so the
    memory a text needs grows with its length only.
    """
    if not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    windows: list[tuple[int, int]] = []
    start = end = -1
    for sentence in split_sentences(text):
        for s, e in _pieces(text, *sentence, max_chars):
            if start < 0:
                start, end = s, e
                continue
            if e - start > max_chars:
                windows.append((start, end))
                start = s
            end = e
    if start < 0:  # nothing but white space
        stripped = text.strip()
        start = text.index(stripped[0]) if stripped else 0
        return [(start, start + len(stripped))]
    windows.append((start, end))
    return windows


_BLANK = re.compile(r"\s+")


def _pieces(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """``text[start:end]`` (no white space at either end) in pieces of at most ``max_chars``
    characters: cut at the last white space that fits, else after ``max_chars`` characters."""
    while end - start > max_chars:
        cut = start + max_chars
        blanks = [m for m in _BLANK.finditer(text, start + 1, cut + 1)]
        if blanks:
            yield start, blanks[-1].start()
            start = blanks[-1].end()
        else:
            yield start, cut
            start = cut
        while start < end and text[start].isspace():  # a cut that fell in a run of white space
            start += 1
    if start < end:
        yield start, end
