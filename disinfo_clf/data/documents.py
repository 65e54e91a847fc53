"""Parse EUvsDisinfo case documents into :class:`Case` records and labelled sentence spans.

One layout pass serves both :func:`parse_document` and :func:`segment`: every line is read as a
title (``DISINFO:``), a heading (``Summary``, ``Disproof``, ``publication/media``, ``see more``),
a metadata bullet, a bare keyword line, site boilerplate or body text; body lines are claim or
debunk by the ``Disproof`` heading, else by a two-blank-line gap after the claim (titled pages),
else by the role model with a monotone claim-then-debunk switch (documents without headings).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from os import PathLike
from typing import Sequence

from ..text.textio import read_utf8
from .cases import Case, Span
from ..text.dates import parse_date
from ..models.roles import RoleModel, claim_debunk_switch, debunk_probabilities, default_role_model
from ..text.sentences import line_sentences, line_spans

_TITLE = re.compile(r"^\s*disinfo\s*:\s*(?P<title>.*?)\s*$", re.IGNORECASE)
_SUMMARY = re.compile(r"^\s*summary\s*:?\s*$", re.IGNORECASE)
_DISPROOF = re.compile(r"^\s*(?:disproof|response)\s*:?\s*$", re.IGNORECASE)
_HEADING = re.compile(r"^\s*(?:publication\s*/\s*media|see more)\s*$", re.IGNORECASE)
_BOILERPLATE_ZONE = re.compile(r"^\s*related disinfo cases\s*$", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"^\s*(?:see also\b|read also\b|see other examples\b|read more\b|cases in the euvsdisinfo database\b"
    r"|your opinion matters\b|data protection information\b|subscribe to the disinfo review\b"
    r"|your weekly update on pro-kremlin disinformation\b|the disinformation review is sent\b)",
    re.IGNORECASE,
)
_FIELDS = {
    "outlet": r"outlets?",
    "published": r"date of publication|publication date",
    "languages": r"article language\(s\)|article languages?|languages?",
    "issue": r"reported in",
    "countries": r"countries\s*/\s*regions discussed|countries and/or regions discussed in the disinformation"
    r"|countries(?: discussed)?|regions discussed",
    "keywords": r"keywords|tags",
}
_META = re.compile(
    r"^\s*(?P<bullet>[•·▪◦‣*\-–]\s*)?(?P<field>"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern in _FIELDS.items())
    + r")\s*(?P<colon>:)?\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)
logger = logging.getLogger(__name__)

_ARCHIVED = re.compile(r"\s*\(archived\)\s*\*?\s*$", re.IGNORECASE)
_MAX_KEYWORD_LINE_WORDS = 8
UNRELATED_SIMILARITY = 0.06
"""A leading claim paragraph of a headless document whose TF-IDF cosine with every debunk
paragraph is below this (and below half the best claim paragraph's) is a separate, undebunked case."""


@dataclass
class _Line:
    """One line of the document: where it is, what it is, and its sentences."""

    number: int
    start: int
    end: int
    kind: str  # blank, title, summary, disproof, heading, meta, keywords, boilerplate, body
    key: str | None = None  # metadata field name; "zone" for a boilerplate heading
    value: str = ""
    sentences: list[tuple[int, int]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # per sentence, body lines only


@dataclass
class _Block:
    """The lines of one titled case, or of a run of text before any title."""

    title: str | None = None
    lines: list[_Line] = field(default_factory=list)

    def body(self) -> list[_Line]:
        """The claim/debunk text lines, in order."""
        return [line for line in self.lines if line.kind == "body"]


def _classify(text: str, number: int, start: int, end: int) -> _Line:
    raw = text[start:end]
    line = _Line(number, start, end, "blank" if not raw.strip() else "body")
    if line.kind == "blank":
        return line
    if match := _TITLE.match(raw):
        line.kind, line.value = "title", match.group("title")
    elif _SUMMARY.match(raw):
        line.kind = "summary"
    elif _DISPROOF.match(raw):
        line.kind = "disproof"
    elif _HEADING.match(raw):
        line.kind = "heading"
    elif _BOILERPLATE_ZONE.match(raw):
        line.kind, line.key = "boilerplate", "zone"
    elif _BOILERPLATE.match(raw):
        line.kind = "boilerplate"
    elif (match := _META.match(raw)) and (match.group("bullet") or match.group("colon")):
        line.kind, line.value = "meta", match.group("value")
        line.key = next(name for name in _FIELDS if match.group(name) is not None)
    line.sentences = line_sentences(text, start, end)
    return line


def _is_keyword_line(text: str, lines: list[_Line], i: int) -> bool:
    """A short bare line between a metadata block and a (repeated) title, as in seed 003."""
    raw = text[lines[i].start:lines[i].end].strip()
    if len(raw.split()) > _MAX_KEYWORD_LINE_WORDS or raw[-1] in ".!?:;":
        return False
    before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].kind != "blank"), None)
    after = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].kind != "blank"), None)
    return before is not None and before.kind in ("meta", "keywords") and after is not None and after.kind == "title"


def _read_lines(text: str) -> list[_Line]:
    lines = [_classify(text, n, a, b) for n, (a, b) in enumerate(line_spans(text), start=1)]
    in_boilerplate = False
    for i, line in enumerate(lines):
        if line.kind == "title":
            in_boilerplate = False
        elif line.key == "zone":
            in_boilerplate = True
        elif in_boilerplate and line.kind != "blank":
            line.kind = "boilerplate"
        elif line.kind == "body" and _is_keyword_line(text, lines, i):
            line.kind, line.value = "keywords", text[line.start:line.end].strip()
    return lines


def _blocks(lines: list[_Line]) -> list[_Block]:
    blocks: list[_Block] = []
    for line in lines:
        if line.kind == "title":
            current = blocks[-1] if blocks else None
            repeat = (
                current is not None
                and not current.body()
                and (current.title is None or current.title.casefold() == line.value.casefold())
            )
            if repeat and current is not None:
                current.title = line.value
            else:
                blocks.append(_Block(title=line.value))
        elif not blocks:
            blocks.append(_Block())
        blocks[-1].lines.append(line)
    return blocks


def _section_gap(block: _Block) -> int | None:
    """Index into ``block.body()`` of the first paragraph after two or more blank lines."""
    blanks, seen_body, body_index = 0, False, 0
    for line in block.lines:
        if line.kind == "blank":
            blanks += 1
        elif line.kind == "body":
            if seen_body and blanks >= 2:
                return body_index
            seen_body, blanks, body_index = True, 0, body_index + 1
    return None


def _assign_roles(text: str, block: _Block, role_model: RoleModel | None) -> None:
    """Set ``roles`` (claim/debunk per sentence) on the block's body lines."""
    body = block.body()
    disproof = next((i for i, line in enumerate(block.lines) if line.kind == "disproof"), None)
    if disproof is not None:
        for line in body:
            line.roles = ["claim" if line.number < block.lines[disproof].number else "debunk"] * len(line.sentences)
        return
    gap = _section_gap(block) if block.title is not None else None
    if gap is not None:
        for i, line in enumerate(body):
            line.roles = ["claim" if i < gap else "debunk"] * len(line.sentences)
        return
    sentences = [(i, s) for i, line in enumerate(body) for s in line.sentences]
    if not sentences:
        return
    p = debunk_probabilities(
        [text[a:b] for _, (a, b) in sentences],
        role_model or default_role_model(),
        contexts=[text[body[i].start:body[i].end] for i, _ in sentences],
    )
    min_claim = 1 if block.title is not None or len(body) > 1 else 0
    k = claim_debunk_switch(p, [i for i, _ in sentences], min_claim=min_claim)
    for n, (i, _) in enumerate(sentences):
        body[i].roles.append("claim" if n < k else "debunk")


def _layout(text: str, role_model: RoleModel | None) -> list[_Block]:
    blocks = _blocks(_read_lines(text))
    for block in blocks:
        _assign_roles(text, block, role_model)
    return blocks


def _check_text(text: object, caller: str) -> str:
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{caller} expects str, got {type(text).__name__}: decode bytes with .decode('utf-8') first")
    if not isinstance(text, str):
        raise TypeError(f"{caller} expects the document text as str, got {type(text).__name__}")
    return text


def segment(text: str, *, role_model: RoleModel | None = None) -> list[Span]:
    """Every non-blank sentence of ``text``, in order, labelled ``claim``, ``debunk`` or ``other``.

    Headings, titles, metadata, keyword lines and site boilerplate are ``other``. Where the
    document has no structure, ``role_model`` (default: the shipped role model) decides.
    """
    text = _check_text(text, "segment")
    spans: list[Span] = []
    for block in _layout(text, role_model):
        for line in block.lines:
            roles = line.roles if line.kind == "body" else ["other"] * len(line.sentences)
            spans.extend(Span(a, b, role, text[a:b]) for (a, b), role in zip(line.sentences, roles))  # type: ignore[arg-type]
    return spans


# --- cases -----------------------------------------------------------------------------------


def _paragraphs(text: str, lines: Sequence[_Line], role: str) -> list[tuple[_Line, str]]:
    """``(line, text)`` for each line holding sentences of ``role``."""
    out = []
    for line in lines:
        picked = [s for s, r in zip(line.sentences, line.roles) if r == role]
        if picked:
            out.append((line, text[picked[0][0]:picked[-1][1]]))
    return out


def _first_sentence(text: str, line: _Line) -> str:
    start, end = line.sentences[0]
    return text[start:end]


def _parse_date(value: str, where: str) -> dt.date:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise ValueError(f"{where}, field 'Date of publication': {exc}") from None


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,;]", value) if item.strip()]


def _apply_metadata(case: Case, lines: Sequence[_Line], source: str | None) -> None:
    for line in lines:
        if line.kind == "keywords":
            case.keywords.extend(k for k in _split_list(line.value) if k not in case.keywords)
        elif line.kind != "meta" or not line.value:
            continue
        elif line.key == "outlet":
            case.outlet = _ARCHIVED.sub("", line.value) or None
        elif line.key == "published":
            case.published = _parse_date(line.value, f"{source or '<text>'}, line {line.number}")
        elif line.key == "issue":
            number = re.search(r"\d+", line.value)
            case.issue = int(number.group()) if number else None
        elif line.key in ("languages", "countries", "keywords"):
            values: list[str] = getattr(case, line.key)
            values.extend(v for v in _split_list(line.value) if v not in values)


def _similarities(claims: Sequence[str], debunks: Sequence[str]) -> list[float] | None:
    """Best TF-IDF cosine of each claim paragraph with any debunk paragraph (IDF from the document)."""
    # sklearn is slow to import and only headless documents need it.
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
    try:
        matrix = vectorizer.fit_transform([*claims, *debunks])
    except ValueError:  # no content words at all
        return None
    cosine = (matrix[: len(claims)] @ matrix[len(claims):].T).toarray()
    return [float(row.max()) for row in cosine]


def _unrelated_leading(claims: Sequence[str], debunks: Sequence[str]) -> int:
    """How many leading claim paragraphs share (almost) nothing with the debunk."""
    if len(claims) < 2 or not debunks:
        return 0
    similarity = _similarities(claims, debunks)
    if similarity is None:
        return 0
    limit = min(UNRELATED_SIMILARITY, 0.5 * max(similarity))
    n = 0
    while n < len(claims) - 1 and similarity[n] < limit:
        n += 1
    return n


def _block_cases(text: str, block: _Block, source: str | None) -> list[Case]:
    body = block.body()
    claims = _paragraphs(text, body, "claim")
    debunks = _paragraphs(text, body, "debunk")
    first = next((line for line in block.lines if line.kind != "blank"), None)
    if first is None or not claims:
        return []
    split = _unrelated_leading([p for _, p in claims], [p for _, p in debunks]) if block.title is None else 0
    cases = []
    for line, paragraph in claims[:split]:
        cases.append(Case(title=_first_sentence(text, line), claim=paragraph, source=source, line=line.number))
    claims = claims[split:]
    title = block.title or _first_sentence(text, claims[0][0])
    main = Case(
        title=title,
        claim="\n\n".join(p for _, p in claims),
        debunk="\n\n".join(p for _, p in debunks),
        source=source,
        line=claims[0][0].number if split else first.number,
    )
    _apply_metadata(main, block.lines, source)
    return [*cases, main]


def parse_document(text: str, *, source: str | None = None, role_model: RoleModel | None = None) -> list[Case]:
    """The cases in one EUvsDisinfo case document, in order (see the module docstring for layouts).

    ``source`` is recorded on each case and named in errors; ``role_model`` (default: the shipped
    one) tells claim from debunk in documents without headings.
    """
    text = _check_text(text, "parse_document")
    if not text.strip():
        where = f" ({source})" if source else ""
        raise ValueError(f"parse_document got an empty document{where}: pass the text of an EUvsDisinfo case page")
    cases: list[Case] = []
    claimless: list[_Block] = []
    for block in _layout(text, role_model):
        found = _block_cases(text, block, source)
        cases.extend(found)
        if not found:
            claimless.append(block)
    if not cases:
        reasons = sorted({_no_claim_reason(block) for block in claimless})
        raise ValueError(f"no case found in {source or 'the document'}: {'; '.join(reasons)}. A case needs "
                         "claim text: the lines after a 'DISINFO: <title>' line and before a 'Disproof' heading")
    for block in claimless:
        if block.title or block.body():
            first = next(line for line in block.lines if line.kind != "blank")
            logger.warning("%s, line %d: skipped a case with no claim text (%s)", source or "<text>",
                           first.number, _no_claim_reason(block))
    return cases


def _no_claim_reason(block: _Block) -> str:
    """Why a block holds no claim, for people."""
    if any(line.kind == "disproof" for line in block.lines):
        return "all its text follows a 'Disproof' heading, so it is debunk, not claim"
    if block.body():
        return "all its text reads as a debunk, not as a claim"
    return "it has only titles, headings, metadata or boilerplate, no claim text"


def read_document(path: str | PathLike[str]) -> str:
    """The text of a UTF-8 case document (a BOM is dropped); a ValueError naming the file, the
    line and an ``iconv`` command that converts it otherwise."""
    return read_utf8(path)


def parse_file(path: str | PathLike[str], *, role_model: RoleModel | None = None) -> list[Case]:
    """:func:`parse_document` on a UTF-8 text file, with ``source`` set to the path."""
    return parse_document(read_document(path), source=str(path), role_model=role_model)
