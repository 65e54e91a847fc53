"""Which language a text is in: fastText's offline language-identification model (``lid.176.ftz``,
shipped in ``resources/langid``), read through ``fasttext.load_model``."""
from __future__ import annotations

import functools
import logging
from typing import Any, Sequence

import fasttext

from ..resources import LANGID_MODEL

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.3
"""Below this detector score the language is reported as unknown (``None``)."""
_SAMPLE_CHARS = 1000
"""The detector reads this many characters of whitespace-normalised text: enough for a stable answer."""
_LABEL = "__label__"


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    try:
        return fasttext.load_model(str(LANGID_MODEL))
    except (OSError, ValueError) as exc:  # a damaged install: say which file, and how to get it back
        raise RuntimeError(f"{LANGID_MODEL}: the language-identification model cannot be read ({exc}); "
                           "reinstall disinfo-clf to restore it") from exc


_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTERS = _UPPER + _UPPER.lower()


def _sample(text: str) -> str:
    """What the detector reads of ``text``: the start, whitespace-normalised (so no newline), and
    lowercased when (mostly) upper case, which the model would otherwise misread (ASCII ``[A-Z]``
    counted)."""
    # Only the start is read: splitting a 10 MB record whole would cost ~100 MB for nothing.
    sample = " ".join(text[:4 * _SAMPLE_CHARS].split())[:_SAMPLE_CHARS]
    if sample.isupper():
        return sample.lower()
    # UTF-8 holds an ASCII letter only as that byte, so counting bytes counts the letters.
    raw = sample.encode("utf-8", "surrogatepass")
    upper = len(raw) - len(raw.translate(None, _UPPER))
    if upper and upper > 0.8 * (len(raw) - len(raw.translate(None, _LETTERS))) and len(sample) > 5:
        return sample.lower()
    return sample


def detect_languages(texts: Sequence[str]) -> list[str | None]:
    """ISO 639-1 code of each text's language, in order; ``None`` where the detector is unsure
    (score below :data:`MIN_CONFIDENCE`) or fails."""
    predict = _detector().predict
    out: list[str | None] = []
    for text in texts:
        try:
            sample = _sample(text)
            try:
                labels, scores = predict(sample, k=1)
            except TypeError:  # a lone surrogate cannot reach the model as UTF-8: read it as "?"
                labels, scores = predict(sample.encode("utf-8", "replace").decode("utf-8"), k=1)
        except Exception as exc:  # the detector is best effort: a failure must not lose the prediction
            logger.debug("language detection failed: %s", exc)
            labels, scores = (), ()
        out.append(labels[0][len(_LABEL):] if labels and min(float(scores[0]), 1.0) >= MIN_CONFIDENCE else None)
    return out


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language, ``None`` when the detector is unsure or fails."""
    return detect_languages([text])[0]


OTHER = "other"
"""The group of every language without weights or calibration of its own (and of unknown ones)."""
GROUPS = ("en", OTHER)
"""The default language groups with their own weights, calibration and thresholds: English (most
of the cases are English, so English texts sit closer to them) and every other language."""


def language_groups(languages: Sequence[str | None], own: Sequence[str] = GROUPS) -> list[str]:
    """The group of each language code: itself when ``own`` names it, else :data:`OTHER`."""
    named = set(own) - {OTHER}
    return [lang if lang in named else OTHER for lang in languages]


def language_group(language: str | None, own: Sequence[str] = GROUPS) -> str:
    """The group of one language code (``None``: unknown, read as :data:`OTHER`)."""
    return language_groups([language], own)[0]
