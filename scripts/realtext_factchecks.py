"""Readers for the fact-check sources of the real-text corpus (see ``realtext_sources.py``): whole fact-checks,
their verdict paragraphs, debunk headlines and the claims they review, from ClaimReview exports scraped by
susmita3107/Claims_Extractor (MIT), read from its fetched git mirror at pinned commits."""
from __future__ import annotations

import csv
import functools
import io
import re
from typing import Callable, Iterator

from disinfo_clf.text.language import detect_language

from realtext_sources import SENTENCE_END, Record, clean, git_show, record, topic_of

_FOOTER = re.compile(r"\s*(RESEARCH \| ARTICLE|Leave your comments, thoughts).*", re.S)


# --- Fact-checks scraped by susmita3107/Claims_Extractor (MIT) -------------------------------------------
CLAIMS_EXTRACTOR = ("susmita3107/Claims_Extractor", "0b0668690c84aec2ea6fefca078cfc6aa22b27b1")
FALSE_VERDICTS = re.compile(r"^(false|likely false|misleading|unsubstantiated|f|m|не факт|пока не факт|сомнительно"
                            r"|пока сомнительно|искажение|неправда|faux|trompeur|infondé|partiellement faux|montage)", re.I)
TRUE_VERDICTS = re.compile(r"^(true|likely true|t|правда|скорее, правда|скорее, так)$", re.I)
_VERDICT_CUE = re.compile(
    r"(\b(is|was|are|were|proved|proves|appears|remains) (false|misleading|untrue|not true|unsubstantiated|baseless"
    r"|fabricated|a fabrication|fake|unfounded)\b|\bno evidence\b|\bin fact\b|\bin reality\b|\bfalsely\b"
    r"|не соответствует действительности|неправд|не факт\b|\bложн|на самом деле|в действительности|фейк)", re.I)
WAR = re.compile(r"(russ|ukrain|poutine|putin|zelensk|otan|nato|kremlin|moscou|kiev|kyiv|donbass|crimée|biolab)", re.I)
"""The narrow war keywords selecting AFP Factuel items (the broad ONTOPIC list would take Mali or vaccines)."""


def claims_extractor(name: str) -> list[dict[str, str]]:
    """Rows of ``samples/output_dev_<name>.csv`` (semicolon-separated ClaimReview exports)."""
    text = git_show(*CLAIMS_EXTRACTOR, f"samples/output_dev_{name}.csv").decode("utf-8")
    csv.field_size_limit(10 ** 8)
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def verdict_paragraph(body: str) -> str | None:
    """The fact-check's verdict passage: its CONCLUSION section, else the first verdict sentence and the next two."""
    conclusion = re.search(r"\b(CONCLUSION|Conclusion:|ВЫВОД)\s*(.{200,}?)(?:RESEARCH \||$)", body, re.S)
    if conclusion:
        passage = conclusion.group(2)
        return passage[:900].rsplit(" ", 1)[0] if len(passage) > 900 else passage
    sentences = SENTENCE_END.split(body)
    for i, sentence in enumerate(sentences):
        if i > 0 and _VERDICT_CUE.search(sentence):
            passage = " ".join(sentences[i:i + 3])
            return passage if 80 <= len(passage) <= 1500 else None
    return None


def fact_checks(source: str, lang: str | None) -> list[Record]:
    """Whole fact-check texts and their verdict paragraphs: ``debunk`` for false verdicts, ``ordinary`` for true ones."""
    out: list[Record] = []
    for row in claims_extractor(source):
        verdict = row["rating_alternateName"].strip()
        kind = "debunk" if FALSE_VERDICTS.match(verdict) else "ordinary" if TRUE_VERDICTS.match(verdict) else None
        raw = _FOOTER.sub("", row["extra_body"])
        body = clean(raw)
        if kind is None or len(body) < 300:
            continue
        url = row["claimReview_url"].strip()
        key = re.sub(r"\W+", "-", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html"))[-60:]
        text_lang = lang or detect_language(body)
        title = clean(row["extra_title"]) or None
        fields = dict(date=row["claimReview_datePublished"][:10] or None, url=url, title=title,
                      verdict=verdict, topic=topic_of(f"{title} {body[:1500]}"))
        out.append(record(source, f"{key}:text", body, text_lang, kind, unit="text", **fields))
        # Russian verdict cues proved unreliable (they caught the quoted claim), so paragraphs are English only.
        paragraph = verdict_paragraph(clean(raw, cap=False)) if kind == "debunk" and text_lang == "en" else None
        if paragraph:
            out.append(record(source, f"{key}:verdict", paragraph, text_lang, kind, unit="paragraph", **fields))
    return out


def afp_factuel() -> list[Record]:
    """AFP Factuel: false claims as circulated (``claim``) and the debunk headlines (``debunk``), on-topic only."""
    out: list[Record] = []
    for row in claims_extractor("afpfactuel"):
        verdict = row["rating_alternateName"].strip()
        if not FALSE_VERDICTS.match(verdict):
            continue
        url = row["claimReview_url"].strip()
        key = re.sub(r"\W+", "-", url.split("://", 1)[-1])[-60:]
        date = row["claimReview_datePublished"][:10] or None
        claim, title = clean(row["claimReview_claimReviewed"]), clean(row["extra_title"])
        if len(claim) >= 30 and WAR.search(claim):
            out.append(record("afp_factuel", f"{key}:claim", claim, "fr", "claim", topic="ontopic", date=date,
                              url=url, unit="claim", verdict=verdict))
        if len(title) >= 30 and WAR.search(title):
            out.append(record("afp_factuel", f"{key}:headline", title, "fr", "debunk", topic="ontopic", date=date,
                              url=url, unit="headline", verdict=verdict))
    return out


# Fact-checkers whose ClaimReview samples (``samples/output_sample_<name>.csv`` at FACT_CHECK_SAMPLES) give
# debunk headlines and the claims they review. AFP's English desk is left out while AFP Factuel is a test
# source; PolitiFact, Check Your Fact and TruthOrFiction are left out too (question or "Truth or Fiction?"
# headlines, and PolitiFact is a large publisher of the ClaimReview test source).
FACT_CHECK_SAMPLES = ("susmita3107/Claims_Extractor", "ceed56aad5ed69cf7aefca2a05b2afa5335cf8ec")
HEADLINE_PUBLISHERS = {"aap": "aap.com.au", "vishvasnews": "vishvasnews.com", "fullfact": "fullfact.org",
                       "africacheck": "africacheck.org"}
_DEBUNK_RATING = re.compile(r"^(false|partly false|mostly false|somewhat false|misleading|missing context"
                            r"|altered)", re.I)


def fact_check_headlines() -> list[Record]:
    """Debunk headlines (``debunk``) of false or misleading ratings, and the claims they review (``claim``)."""
    out: list[Record] = []
    csv.field_size_limit(10 ** 8)
    for name, outlet in HEADLINE_PUBLISHERS.items():
        text = git_show(*FACT_CHECK_SAMPLES, f"samples/output_sample_{name}.csv").decode("utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            rating = row["rating_alternateName"].strip()
            if not _DEBUNK_RATING.match(rating):
                continue
            url = row["claimReview_url"].strip()
            key = re.sub(r"\W+", "-", url.rstrip("/").rsplit("/", 1)[-1])[-60:]
            date = (row["claimReview_datePublished"] or row["creativeWork_datePublished"]).strip()
            date = "-".join(part.zfill(2) for part in date[:10].split("-")) if date else None
            fields = dict(date=date, url=url, outlet=outlet, verdict=rating)
            title = clean(row["extra_title"].strip().strip('"'))
            claim = clean(row["claimReview_claimReviewed"].strip().strip('"'))
            if len(title) >= 25:
                out.append(record("factcheck_headlines", f"{name}-{key}:headline", title, detect_language(title),
                                  "debunk", unit="headline", title=title, **fields))
            if len(claim) >= 25 and claim.lower() != title.lower():
                out.append(record("factcheck_headlines", f"{name}-{key}:claim", claim, detect_language(claim),
                                  "claim", unit="claim", **fields))
    return out


def readers() -> Iterator[tuple[str, Callable[[], list[Record]]]]:
    """(source name, reader) for every fact-check source."""
    yield "polygraph", functools.partial(fact_checks, "polygraph", "en")
    yield "eufactcheck", functools.partial(fact_checks, "eufactcheck", None)
    yield "factograph", functools.partial(fact_checks, "factograph", "ru")
    yield "afp_factuel", afp_factuel
    yield "factcheck_headlines", fact_check_headlines
