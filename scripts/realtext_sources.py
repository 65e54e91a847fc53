"""Readers for the real-text corpus: one function per source, reading a fetched git mirror at a pinned commit.

Each reader returns candidate records (dicts with the corpus fields except ``split``); sampling,
deduplication and splitting happen in ``build_realtext.py``. Mirrors are the bare repositories that
the ``fetch`` tool puts under ``/work/.mirror/<owner>+<name>/repo``.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import logging
import re
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from xml.etree import ElementTree

from disinfo_clf.text.textio import strip_tags

logger = logging.getLogger("realtext_sources")
MIRRORS = Path("/work/.mirror")
MAX_CHARS = 4000
"""Texts are cut at a sentence end before this many characters (whole articles are long)."""

Record = dict[str, Any]

ONTOPIC = re.compile(
    r"(russ|rusk|rosj|rosyj|rusi|росс|росі|рф\b|путин|путін|putin|poutine|kremlin|кремл|moscow|moscou|moskau|moskw|москв"
    r"|ukrain|ukrai|ucrain|укра|kyiv|kiev|kijów|київ|киев|zelensk|zełensk|зеленск|зеленськ|donbas|донбас|crim|krym|крым|крим"
    r"|nato|нато|otan|\bEU\b|\bUE\b|\bЕС\b|\bЄС\b|europ|евро|євро|sanction|sanktion|sankcj|sancți|санкц"
    r"|\bwar\b|krieg|guerre|wojn|război|guerra|войн|війн|invasion|inwazj|вторжен|вторгн|military|militär|militaire|армі|армия|troops"
    r"|elect|wahl|élection|wybor|alegeri|elezion|elecci|выбор|вибор|migra|refugee|flüchtl|réfugi|uchodź|refugia|беженц|біженц"
    r"|vaccin|impf|szczep|вакцин|covid|ковид|pandemi|пандем|nuclear|ядерн|атомн|biolab|биолаб)",
    re.I,
)
"""Keywords marking a text as on the project's topics (Russia, Ukraine, NATO, EU, war, sanctions, elections,
migration, health); a crude, documented heuristic, not an annotation."""

_GLUED_SENTENCE = re.compile(r"(?<=[a-zа-яёіїєґ0-9%)][.!?])(?=[A-ZА-ЯЁІЇЄҐ“«\"])|(?<=[a-zа-яё][.!?][”\"»])(?=[A-ZА-ЯЁ])")
_URL = re.compile(r"https?://\S+")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKDOWN = re.compile(r"\*\*|__|~~|`")
SENTENCE_END = re.compile(r"(?<=[.!?…»”\"])\s+")


def _git(repo: str, *args: str) -> bytes:
    """Output of ``git args`` in the mirror of ``repo`` (``owner/name``)."""
    git_dir = MIRRORS / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        raise FileNotFoundError(f"{git_dir}: no mirror of {repo}; bring it with the fetch tool (github:{repo})")
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def git_show(repo: str, commit: str, path: str) -> bytes:
    """The bytes of ``path`` at ``commit`` in the mirror of ``repo``."""
    return _git(repo, "show", f"{commit}:{path}")


def git_files(repo: str, commit: str, *folders: str) -> list[str]:
    """Paths of the files under ``folders`` at ``commit`` in the mirror of ``repo``."""
    return _git(repo, "ls-tree", "-r", "--name-only", commit, *folders).decode("utf-8").split()


def clean(text: str, cap: bool = True) -> str:
    """Text without markup, URLs or glued sentences, whitespace normalised per line, cut near MAX_CHARS if ``cap``."""
    text = strip_tags(text) if "<" in text and ">" in text else text
    text = _MARKDOWN.sub("", _URL.sub("", _MD_LINK.sub(r"\1", text.replace("\xa0", " "))))
    text = _GLUED_SENTENCE.sub(" ", text)
    lines = (" ".join(line.split()) for line in text.splitlines())
    text = "\n".join(line for line in lines if line)
    if cap and len(text) > MAX_CHARS:
        cut = text[:MAX_CHARS]
        ends = [m.start() for m in SENTENCE_END.finditer(cut)]
        text = cut[:ends[-1]] if ends and ends[-1] > MAX_CHARS // 2 else cut
    return text.strip()


def topic_of(text: str) -> str:
    """``ontopic`` when ``text`` hits the topic keywords, else ``offtopic``."""
    return "ontopic" if ONTOPIC.search(text) else "offtopic"


def record(source: str, key: str, text: str, lang: str | None, kind: str, *, topic: str | None = None,
           date: str | None = None, url: str | None = None, title: str | None = None, unit: str,
           outlet: str | None = None, verdict: str | None = None) -> Record:
    """One corpus record; ``topic`` defaults to the keyword heuristic on text and title."""
    return {"id": f"{source}:{key}", "text": text, "lang": lang, "source": source, "kind": kind,
            "topic": topic if topic is not None else topic_of(f"{title or ''} {text}"), "date": date,
            "url": url, "title": title, "unit": unit, "outlet": outlet, "verdict": verdict}


# --- Telegram (NKTKLN/telegram-news-classifier, data CC BY 4.0) -----------------------------------------
TELEGRAM = ("NKTKLN/telegram-news-classifier", "b8b03f1982910fbf4151c184f1ade8b67aa1f585")
TELEGRAM_CHANNELS = {  # source name: (channel id, kind)
    "tg_bbc_russian": ("1001003921752", "ordinary"),
    "tg_naked_science": ("1001000724666", "ordinary"),
    "tg_ria_novosti": ("1001101170442", "hard"),
}


def telegram(source: str) -> list[Record]:
    """Posts of one Telegram channel; texts under 60 characters (captions, polls) are skipped."""
    channel, kind = TELEGRAM_CHANNELS[source]
    posts = json.loads(git_show(*TELEGRAM, f"data/raw/{channel}_messages.json"))
    out = []
    for post in posts:
        text = clean(post.get("text") or "")
        if len(text) >= 60:
            out.append(record(source, str(post["message_id"]), text, "ru", kind, date=post["date"][:10],
                              url=None, unit="post", outlet=post["channel"]))
    return out


# --- NTREX-128 (MicrosoftTranslator/NTREX, CC BY-SA 4.0) --------------------------------------------------
NTREX = ("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf")
NTREX_LANGS = {"en": "src.eng", "ru": "ref.rus", "uk": "ref.ukr", "de": "ref.deu", "fr": "ref.fra", "pl": "ref.pol",
               "ro": "ref.ron", "bg": "ref.bul", "lt": "ref.lit", "lv": "ref.lav", "et": "ref.est", "ka": "ref.kat",
               "it": "ref.ita", "es": "ref.spa"}


def ntrex() -> dict[str, list[str]]:
    """The 1,997 newstest2019 sentences per language, line-aligned (English is the original)."""
    return {lang: git_show(*NTREX, f"NTREX-128/newstest2019-{name}.txt").decode("utf-8").splitlines()
            for lang, name in NTREX_LANGS.items()}


# --- Report-only sources -----------------------------------------------------------------------------------
WMT = {"wmt22": ("wmt-conference/wmt22-news-systems", "20240a2e96a50e823ea8cdf37fd8af52547146e3"),
       "wmt23": ("wmt-conference/wmt23-news-systems", "99b5b9de2a535c2c5542fd4ec404682903299894")}
WMT_STATE_OUTLETS = {"rt-russian", "izvestiya", "belta", "kp", "ria", "tass", "rg", "vesti", "ntv", "1tv", "aif",
                     "argumenti", "lenta", "tvzvezda", "sputnik"}
"""WMT document-id prefixes of Russian/Belarusian state or state-aligned outlets: their documents are ``hard``."""
WMT_FILES = [("wmt22", "ru-en"), ("wmt22", "uk-en"), ("wmt22", "fr-de"), ("wmt22", "de-fr"),
             ("wmt23", "ru-en"), ("wmt23", "uk-en")]


def wmt_news() -> list[Record]:
    """Original-language documents of the WMT22/23 general test sets: domain ``news`` (WMT22 uk has no domain
    labels: its documents of 10+ segments, which are articles and essays, are taken instead)."""
    out: list[Record] = []
    for year, pair in WMT_FILES:
        src_lang = pair.split("-")[0]
        root = ElementTree.fromstring(git_show(*WMT[year], f"xml/wmttest20{year[-2:]}.{pair}.all.xml"))
        for doc in root.iter("doc"):
            segs = [seg.text or "" for seg in doc.find("src").iter("seg")]
            wanted = doc.get("domain") == "news" or (year == "wmt22" and pair == "uk-en" and len(segs) >= 10)
            if doc.get("origlang") != src_lang or not wanted:
                continue
            text = clean("\n".join(segs))
            outlet = doc.get("id").rsplit(".", 1)[0] if "." in doc.get("id") else None
            if len(text) >= 200:
                kind = "hard" if outlet in WMT_STATE_OUTLETS else "ordinary"
                out.append(record("wmt_news", f"{year}:{pair}:{doc.get('id')}", text, src_lang, kind, unit="text",
                                  outlet=outlet))
    return out


RUWA = ("ninakhairova/dataset_RUWA", "5eab65389306e7adf7d2aef95b803b9308c72e61")
RUWA_HARD = {"rt.com", "tass.com", "en.news-front.info"}


def ruwa() -> list[Record]:
    """RUWA headlines with subheadings: Western/Ukrainian outlets ``ordinary``, RT/TASS/News-Front ``hard``."""
    archive = zipfile.ZipFile(io.BytesIO(git_show(*RUWA, "RUWA_01.08.23.csv.zip")))
    rows = csv.DictReader(io.StringIO(archive.read("RUWA_04.08.23.csv").decode("utf-8", "replace")))
    out: list[Record] = []
    for row in rows:
        title, desc = clean(row["title"]), clean(row["desc"])
        text = f"{title}\n{desc}" if desc and desc != title else title
        if len(text) < 40:
            continue
        month, day, year = row["Date"].split("/")
        site = row["Site"].removeprefix("www.")
        out.append(record("ruwa", row[""], text, "en", "hard" if site in RUWA_HARD else "ordinary", topic="ontopic",
                          date=f"{year}-{month}-{day}", url=row["src"], title=title, unit="headline", outlet=site))
    return out


PRESS = ("PeiYiZhuo/zelenskyy-putin", "134450b5183c05bcbaac31d87e0e0ed65d54986e")


def press_releases() -> list[Record]:
    """Presidential press releases in English: president.gov.ua ``ordinary``, kremlin.ru ``hard``."""
    out: list[Record] = []
    csv.field_size_limit(10 ** 8)
    for who, kind in (("zelenskyy", "ordinary"), ("putin", "hard")):
        for row in csv.DictReader(io.StringIO(git_show(*PRESS, f"press_release_data/{who}.csv").decode("utf-8"))):
            text = clean(row["body"])
            if len(text) >= 200:
                key = row["link"].rstrip("/").rsplit("/", 1)[-1][-60:]
                out.append(record("press_releases", f"{who}:{key}", text, "en", kind, date=row["date"][:10],
                                  url=row["link"], title=clean(row["headline"]), unit="text",
                                  outlet="president.gov.ua" if who == "zelenskyy" else "kremlin.ru"))
    return out


# --- Statements of Ukraine's wartime officials (Amice13/resistinua, CC0) -----------------------------------
RESISTINUA = ("Amice13/resistinua", "2391318cf8c1d24d492995fbf99934ba696ef334")
RESISTINUA_FILES = {"uk": ("messages", "messages-2", "messages-3"), "en": ("messages-en", "messages-2-en", "messages-3-en")}
_RESIST_ENTRY = re.compile(r"id: '([^']+)',.*?speaker: \[([^\]]*)\],\s*date: '(\d{4}-\d\d-\d\d)[^']*',.*?text: `(.*?)`,\s*\n\s*description:",
                           re.S)
TEST_SHINGLE = 10
"""Runs of this many words are compared with a test source's texts (the presidential press releases)."""
TEST_OVERLAP = 0.1
"""A statement sharing more than this share of its word runs with the press releases is left out."""


US_STATEMENTS = ("bikovoy/narrative_analysis", "06f9cb8323d4d8765c41e8eb2e6f6d6fd19c826e")


def us_statements() -> list[Record]:
    """The US President's own statements on Russia's war, 2022-02..2025-01 (American Presidency Project copies of
    White House texts: US government works, public domain), ``ordinary``; joint statements with other governments
    and interviews (media transcripts) are left out."""
    csv.field_size_limit(10 ** 8)
    rows = csv.DictReader(io.StringIO(git_show(*US_STATEMENTS, "data/us_ukraine_biden_docs.csv").decode("utf-8")))
    out: list[Record] = []
    for row in rows:
        if not row["title"].startswith("Statement"):
            continue
        date = datetime.strptime(row["date"].strip(), "%B %d, %Y").strftime("%Y-%m-%d")
        text = clean(row["text"])
        key = f'{date}:{re.sub(r"[^a-z0-9]+", "-", row["title"].lower())[:60].strip("-")}'
        out.append(record("us_statements", key, text, "en", "ordinary", date=date, url=row["url"], title=row["title"],
                          unit="text", outlet="The White House"))
    return out


def _shingles(text: str, n: int = TEST_SHINGLE) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def resistinua() -> list[Record]:
    """Addresses and briefings of Ukraine's president, government and the President's Office, 2022-02-22..05-17,
    each in Ukrainian and English, collected by Amice13/resistinua: ``ordinary`` official statements. A statement
    whose English text shares more than :data:`TEST_OVERLAP` of its :data:`TEST_SHINGLE`-word runs with the
    presidential press releases (a test source: the President's addresses are among them) is left out in both
    languages; posts under 60 characters too."""
    test_shingles: set[tuple[str, ...]] = set()
    for rec in press_releases():
        test_shingles |= _shingles(rec["text"])
    by_language: dict[str, dict[str, tuple[str, str, str]]] = {}
    for lang, names in RESISTINUA_FILES.items():
        entries = by_language.setdefault(lang, {})
        for name in names:
            source = git_show(*RESISTINUA, f"static/content/{name}.js").decode("utf-8")
            for key, speakers, date, text in _RESIST_ENTRY.findall(source):
                speaker = re.findall(r"'([^']+)'", speakers)
                entries.setdefault(key, (date, clean(text.replace("\\`", "`")), speaker[0] if speaker else ""))
    leaked = {key for key, (_, text, _) in by_language.get("en", {}).items()
              for runs in [_shingles(text)] if len(runs & test_shingles) > TEST_OVERLAP * max(len(runs), 1)}
    out = []
    for lang, entries in by_language.items():
        for key, (date, text, speaker) in entries.items():
            if key not in leaked and len(text) >= 60:
                out.append(record("resistinua", f"{key}:{lang}", text, lang, "ordinary", date=date,
                                  url=f"https://www.youtube.com/watch?v={key}", unit="text", outlet=speaker))
    logger.info("resistinua: %d statements left out as sharing text with the press releases (test)", len(leaked))
    return out


KARUN = ("Karun842002/fyp-data-scraper", "3ed3efc066e34207c4071d1ebdd4fb87f6d11b84")
KARUN_FILES = ["invasion_of_ukraine_by_russia", "russia_invasion", "russia_ukraine_conflict", "russia_ukraine_war",
               "ukraine_war"]
_FALSE_RATING = re.compile(r"(false|falso|falsa|faux|misleading|pants on fire|fake|mislead|errado|enganador|manipul"
                           r"|nepravda|yanlış|salah|onwaar|altered|miscaptioned|錯誤|مضلل|زائف|كذب|تضليل|Παραπληροφόρηση"
                           r"|félrevezető|notizia falsa|fals|fałsz|scam|no evidence)", re.I)


TRAINED_PUBLISHERS = {"polygraph.info", "eufactcheck.eu", "aap.com.au", "vishvasnews.com", "fullfact.org",
                      "africacheck.org"}
"""Fact-checkers whose texts are training sources: their ClaimReview entries are left out of this test source."""


def claimreview_ukraine() -> list[Record]:
    """Google Fact Check ClaimReview entries on the war: the claim as reviewed (``claim``) and the fact-check
    headline (``debunk``), for false/misleading ratings; language as the publisher states it."""
    out: list[Record] = []
    for name in KARUN_FILES:
        for entry in json.loads(git_show(*KARUN, f"datasets/{name}.json"))["claims"]:
            review = entry["claimReview"][0]
            rating, lang = review.get("textualRating", ""), review.get("languageCode")
            site = review.get("publisher", {}).get("site") or ""
            host = review["url"].split("://", 1)[-1].split("/", 1)[0].removeprefix("www.")
            if not lang or not _FALSE_RATING.search(rating) or len(rating) > 40 \
                    or {site.removeprefix("www."), host} & TRAINED_PUBLISHERS:
                continue
            date = (review.get("reviewDate") or "")[:10] or None
            key = re.sub(r"\W+", "-", review["url"].split("://", 1)[-1])[-80:]
            fields = dict(date=date, url=review["url"], topic="ontopic", verdict=rating,
                          outlet=site or None)
            claim, title = clean(entry.get("text", "")), clean(review.get("title", ""))
            if len(claim) >= 25:
                out.append(record("claimreview_ukraine", f"{key}:claim", claim, lang, "claim", unit="claim", **fields))
            if len(title) >= 25:
                out.append(record("claimreview_ukraine", f"{key}:headline", title, lang, "debunk", unit="headline",
                                  title=title, **fields))
    return out


POLFAKE = ("MateuszWalczakTUL/POLfake", "7e9c70de8c563b741093f187379cf34595e034ba")


def polfake() -> list[Record]:
    """Polish fact-checked statements: true ones ``ordinary``; false/manipulative ones tagged Russia/Ukraine ``claim``."""
    out: list[Record] = []
    text = git_show(*POLFAKE, "claim-tweet-challenge/claims-train.csv").decode("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        tags = {t.strip() for t in row["tags"].split(",")}
        claim = clean(row["content"])
        date = datetime.fromtimestamp(int(row["publication_date"]), timezone.utc).strftime("%Y-%m-%d") \
            if row["publication_date"].isdigit() else None
        on_war = bool(tags & {"Rosja", "Ukraina"})
        kind = "ordinary" if row["label"] == "Prawda" else "claim" if row["label"] in ("Fałsz", "Manipulacja") \
            and on_war else None
        if kind and len(claim) >= 30:
            topic = "ontopic" if on_war or ONTOPIC.search(claim) or tags & {"UE", "Wybory", "Zdrowie", "Koronawirus",
                                                                               "Bezpieczeństwo", "Uchodźcy"} else "offtopic"
            out.append(record("polfake", row["id"], claim, "pl", kind, topic=topic, date=date, url=row["link"],
                              unit="claim", outlet=row["source"], verdict=row["label"]))
    return out


ROFACT = ("DianaHoefels/RoFact", "c0c1b344bc1325a624904dd1bad72bcdf76a1405")


def rofact() -> list[Record]:
    """Romanian politicians' statements checked by Factual.ro: true ones ``ordinary``."""
    out: list[Record] = []
    for split in ("train", "val"):
        rows = csv.DictReader(io.StringIO(git_show(*ROFACT, f"data/{split}_data.tsv").decode("utf-8")), delimiter="\t")
        for i, row in enumerate(rows):
            claim = clean(row["Claim"]).strip("„”\"")
            if row["Verdict"] == "ADEVĂRAT" and len(claim) >= 30:
                out.append(record("rofact", f"{split}-{i}", claim, "ro", "ordinary", unit="claim",
                                  outlet=row["Author"], verdict=row["Verdict"]))
    return out


def iter_all_lazy() -> Iterator[tuple[str, Callable[[], list[Record]]]]:
    """(source name, reader) for every record-returning source but the fact-checks (``realtext_factchecks``), the
    Wikipedia sources (``realtext_wiki``) and NTREX (line-aligned: the builder reads it)."""
    for name in TELEGRAM_CHANNELS:
        yield name, functools.partial(telegram, name)
    yield "resistinua", resistinua
    yield "us_statements", us_statements
    yield from (("wmt_news", wmt_news), ("ruwa", ruwa), ("press_releases", press_releases),
                ("claimreview_ukraine", claimreview_ukraine), ("polfake", polfake), ("rofact", rofact))
