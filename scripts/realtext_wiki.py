"""Readers for the Wikipedia news sources of the real-text corpus (see ``realtext_sources.py``): the Current
Events Portal's dated event summaries and the Main Page's "In the news" blurbs, both CC BY-SA, both
written by Wikipedia's editors in a neutral point of view and citing news outlets."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Callable, Iterator

import yaml

from realtext_sources import Record, clean, git_files, git_show, record, topic_of

CURRENT_EVENTS = ("ianrastall/current-events-context", "4ff6f7d243c81c1df4a919fb4280d9d7e9559bd8")
CURRENT_EVENTS_YEARS = ("2022", "2023", "2024", "2025", "2026")
SNAPSHOT_KEYS = {"Date", "Source_URI", "Intelligence_Payload"}
"""The keys of a day file copied from the portal; the repository's later LLM-written "deep context" files have
other keys and are left out."""
WAR = re.compile(r"(russia|ukrain|kremlin|putin|zelensk|kyiv|kiev|moscow|donbas|donetsk|luhansk|crimea|kherson"
                 r"|kharkiv|mariupol|zaporizh|bakhmut|wagner|prigozhin|lavrov|shoigu|belgorod|kursk)", re.I)
"""Russia/Ukraine names marking an event summary as about the war."""
_CITATION = re.compile(r"(\s*\([^()]{2,80}\))+\s*$")


def _event_lines(node: object) -> Iterator[str]:
    """Every string in a day file's nested payload (headings and event summaries alike)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _event_lines(value)
    elif isinstance(node, list):
        for value in node:
            yield from _event_lines(value)


def current_events() -> list[Record]:
    """Event summaries about the war from the Wikipedia Current Events Portal (2022 on), ``ordinary``; the outlet
    cited at the end is kept in ``outlet`` and cut from the text."""
    repo, commit = CURRENT_EVENTS
    paths = git_files(repo, commit, *CURRENT_EVENTS_YEARS)
    out: list[Record] = []
    for path in sorted(p for p in paths if p.endswith(".yaml")):
        try:
            day = yaml.safe_load(git_show(repo, commit, path))
        except yaml.YAMLError:
            continue
        if not isinstance(day, dict) or set(day) != SNAPSHOT_KEYS:
            continue
        for n, line in enumerate(_event_lines(day["Intelligence_Payload"])):
            cited = _CITATION.search(line)
            text = clean(_CITATION.sub("", line))
            if not cited or len(text) < 60 or not WAR.search(text):
                continue
            outlets = re.findall(r"\(([^()]+)\)", cited.group(0))
            out.append(record("wiki_current_events", f"{day['Date']}:{n:03d}", text, "en", "ordinary", topic="ontopic",
                              date=str(day["Date"]), url=f"https://en.wikipedia.org/wiki/{day['Source_URI']}".replace(" ", "_"),
                              unit="sentence", outlet="; ".join(outlets)))
    return out


ITN = ("shizhao/ITN-corpus", "568d0100ce8bdae53adfe8deb3ca7bba89b4ed13")
ITN_LANGS = {"en", "ru", "uk", "de", "fr", "pl", "es", "it", "ro", "bg", "lt", "lv", "et", "ka", "pt", "ar", "tr"}


def in_the_news() -> list[Record]:
    """Wikipedia Main Page "In the news" blurbs (2018..2023-04) in the project's languages, ``ordinary``; a blurb
    repeated or reworded on later days is kept once per language, as first shown."""
    corpus = json.loads(git_show(*ITN, "corpus/corpus.json"))
    first: dict[tuple[str, str], tuple[float, str]] = {}  # (subject, language): (time first shown, blurb)
    for subject, items in corpus.items():
        for stamp, item in items.items():
            lang = item.get("lang")
            text = clean(item.get("blurb") or "")
            if lang not in ITN_LANGS or len(text) < 40:
                continue
            if (subject, lang) not in first or float(stamp) < first[(subject, lang)][0]:
                first[(subject, lang)] = (float(stamp), text)
    out: list[Record] = []
    for (subject, lang), (stamp, text) in sorted(first.items()):
        date = datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d")
        out.append(record("wiki_in_the_news", f"{lang}:{subject}:{int(stamp)}", text, lang, "ordinary",
                          topic=topic_of(text), date=date, url=None, unit="headline", outlet="Wikipedia"))
    return out


def readers() -> Iterator[tuple[str, Callable[[], list[Record]]]]:
    """(source name, reader) for every Wikipedia source."""
    yield "wiki_current_events", current_events
    yield "wiki_in_the_news", in_the_news
