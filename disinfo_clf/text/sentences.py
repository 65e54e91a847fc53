"""Sentence splitting, prediction windows and EUvsDisinfo debunk wording.

:func:`split_sentences` is a fast regex splitter used everywhere a text is cut into sentences
(document segmentation, prediction windows, role datasets); :func:`text_windows` groups sentences
into the windows that prediction and case matching score; :func:`has_debunk_cue` finds the debunk
wording the role model's callers add to its probabilities.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterator

from ..cues import search_pattern

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
@functools.lru_cache(maxsize=None)
def debunk_pattern(language: str | None = None) -> Any:
    """The debunk wording to look for in text of ``language``, case-insensitive, as a pattern with
    ``.search(text)``: the English phrases and that language's (every language's when it is
    ``None``). RE2, linear time and several times faster than Python's ``re`` on these
    alternations; compiled on first use (a tenth of a second for all of them)."""
    if language is None:
        return search_pattern("|".join(f"(?:{p})" for p in _DEBUNK_WORDING.values()))
    own = _DEBUNK_WORDING.get(language)
    english = _DEBUNK_WORDING["en"]
    return search_pattern(english if own is None or language == "en" else f"(?:{english})|(?:{own})")


def has_debunk_cue(text: str, language: str | None = None) -> bool:
    """Whether ``text`` holds debunk wording: the English phrases and those of ``language``
    (every language's when it is unknown; one pattern is far cheaper than all eight)."""
    pattern = debunk_pattern(language if language is None or language in _DEBUNK_WORDING else "en")
    try:
        return pattern.search(text) is not None
    except UnicodeEncodeError:  # lone surrogates: read as "?", a non-word character, as Python's re reads them
        return pattern.search(text.encode("utf-8", "replace").decode("utf-8")) is not None
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
    if len(text) <= max_chars:  # one window, its sentences' span: the text without outer white space
        start = len(text) - len(text.lstrip())
        return [(start, len(text.rstrip()))] if start < len(text) else [(0, 0)]
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
