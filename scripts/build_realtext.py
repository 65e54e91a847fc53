"""Build the real-text corpus (text written by others: news, statements, posts, fact-checks) from fetched mirrors.

Sources whose licence allows shipping go to ``disinfo_clf/resources/data/realtext/<source>.jsonl``; the others to
``runs/realtext/<source>.jsonl`` (git-ignored), for reporting numbers only, never for training. The output is
deterministic: same mirrors and commits, same files. See ``disinfo_clf/resources/data/realtext/README.md``.

    PYTHONPATH=$PWD python scripts/build_realtext.py [--only SOURCE ...]
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realtext_factchecks  # noqa: E402
import realtext_sources as rs  # noqa: E402
import realtext_wiki  # noqa: E402

logger = logging.getLogger("build_realtext")
ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DIR = ROOT / "disinfo_clf" / "resources" / "data" / "realtext"
REPORT_DIR = ROOT / "runs" / "realtext"
SEED = 13
FIELDS = ("id", "text", "lang", "source", "kind", "topic", "date", "split", "url", "title", "unit", "outlet",
          "verdict")


@dataclass(frozen=True)
class Plan:
    """How one source is sampled and split."""

    ship: bool
    """Whether its licence allows shipping inside the MIT-licensed package."""
    split: str
    """``test`` (the whole source is test), ``time`` (train, the latest quarter dev), ``dated`` (by
    :attr:`periods`) or ``index`` (NTREX lines)."""
    cap: int
    """At most this many items per (kind, language[, outlet]) stratum, drawn with the fixed seed (per split
    for a ``dated`` plan)."""
    by_outlet: bool = False
    """Whether the cap applies per outlet (so that no outlet swamps a mixed source)."""
    periods: tuple[str, str] | None = None
    """``dated`` plans: the ISO dates from which items are ``dev`` and from which ``test`` (before: ``train``)."""


PLANS = {
    "tg_bbc_russian": Plan(True, "time", 300),
    "tg_naked_science": Plan(True, "time", 100),
    "tg_ria_novosti": Plan(True, "test", 200),
    "ntrex": Plan(True, "index", 120),
    "polygraph": Plan(True, "time", 10_000),
    "eufactcheck": Plan(True, "time", 10_000),
    "factograph": Plan(True, "test", 10_000),
    "afp_factuel": Plan(True, "test", 10_000),
    "resistinua": Plan(True, "test", 10_000),
    "factcheck_headlines": Plan(True, "time", 10_000),
    "wiki_current_events": Plan(True, "dated", 600, periods=("2024-01-01", "2025-01-01")),
    "wiki_in_the_news": Plan(True, "test", 60),
    "us_statements": Plan(True, "test", 10_000),
    "wmt_news": Plan(False, "test", 150),
    "ruwa": Plan(False, "test", 60, by_outlet=True),
    "press_releases": Plan(False, "test", 150, by_outlet=True),
    "claimreview_ukraine": Plan(False, "test", 150),
    "polfake": Plan(False, "test", 200),
    "rofact": Plan(False, "test", 200),
}


TRANSLATED_SOURCES = {"resistinua"}
"""Sources whose items come in several languages (a statement and its translation; ids end in ``:<lang>``)."""


def stem(rec: dict[str, Any]) -> str:
    """The id without its ``:text``/``:verdict`` suffix (a fact-check's whole text and verdict paragraph share
    it) or, in a translated source, its language: such records are drawn and split together."""
    head, _, tail = rec["id"].rpartition(":")
    return head if tail in ("text", "verdict") or rec["source"] in TRANSLATED_SOURCES else rec["id"]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]+", " ", text.lower()).split())


def dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with a new id and a new (normalised) text, in id order; the first one wins."""
    seen_ids, seen_texts, out = set(), set(), []
    for rec in sorted(records, key=lambda r: r["id"]):
        key = (rec["unit"], _norm(rec["text"]))
        if rec["id"] in seen_ids or key in seen_texts or not rec["text"].strip():
            continue
        seen_ids.add(rec["id"])
        seen_texts.add(key)
        out.append(rec)
    return out


def period(rec: dict[str, Any], plan: Plan) -> str | None:
    """The split of a record of a ``dated`` plan (``None`` for other plans)."""
    if plan.split != "dated" or plan.periods is None:
        return None
    dev_from, test_from = plan.periods
    return "train" if rec["date"] < dev_from else "dev" if rec["date"] < test_from else "test"


def sample(source: str, records: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """At most ``plan.cap`` records per stratum; paired records (a fact-check's text and its verdict
    paragraph share the id stem) are drawn together."""
    groups: dict[tuple, dict[str, list]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for rec in records:
        stratum = (rec["kind"], rec["lang"], rec["outlet"] if plan.by_outlet else None)
        if plan.split == "dated":  # other plans keep their strata (and seeds) as they were
            stratum += (period(rec, plan),)
        groups[stratum][stem(rec)].append(rec)
    out = []
    for stratum in sorted(groups, key=str):
        stems = sorted(groups[stratum])
        rng = random.Random(f"{SEED}:{source}:{stratum}")
        for key in sorted(rng.sample(stems, min(plan.cap, len(stems)))):
            out.extend(groups[stratum][key])
    return out


def assign_splits(records: list[dict[str, Any]], plan: Plan) -> None:
    """Set ``split``: whole source test, by its plan's periods, or by time (latest quarter of each kind dev)."""
    if plan.split == "dated":
        for rec in records:
            rec["split"] = period(rec, plan)
        return
    if plan.split == "test":
        for rec in records:
            rec["split"] = "test"
        return
    by_kind = collections.defaultdict(list)
    for rec in records:
        by_kind[rec["kind"]].append(rec)
    for recs in by_kind.values():
        stems = sorted({(r["date"] or "", stem(r)) for r in recs})
        dev = {s for _, s in stems[len(stems) - len(stems) // 4:]}
        for rec in recs:
            rec["split"] = "dev" if stem(rec) in dev else "train"


def build_ntrex(plan: Plan) -> list[dict[str, Any]]:
    """The same ``plan.cap`` NTREX lines in every language; a line's split (every fourth line dev) and topic (from
    the English original) hold in all languages."""
    lines = rs.ntrex()
    n = min(len(v) for v in lines.values())
    chosen = sorted(random.Random(f"{SEED}:ntrex").sample(range(n), plan.cap))
    out = []
    for lang, texts in lines.items():
        for rank, i in enumerate(chosen):
            rec = rs.record("ntrex", f"{lang}:{i:04d}", rs.clean(texts[i]), lang, "ordinary",
                            topic=rs.topic_of(lines["en"][i]), unit="sentence")
            rec["split"] = "dev" if rank % 4 == 3 else "train"
            out.append(rec)
    return out


def write(source: str, records: list[dict[str, Any]], ship: bool) -> Path:
    """Write ``records`` as JSON lines (fields in FIELDS order) to the shipped or the report-only folder."""
    folder = SHIPPED_DIR if ship else REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source}.jsonl"
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for rec in sorted(records, key=lambda r: r["id"]):
            fh.write(json.dumps({f: rec.get(f) for f in FIELDS}, ensure_ascii=False) + "\n")
    return path


def counts_table(source: str, records: list[dict[str, Any]]) -> str:
    """A markdown line per (kind, split) with counts per language."""
    c = collections.Counter((r["kind"], r["split"], r["lang"]) for r in records)
    rows = collections.defaultdict(dict)
    for (kind, split, lang), n in c.items():
        rows[(kind, split)][lang] = n
    return "\n".join(f"| {source} | {kind} | {split} | {sum(langs.values())} | "
                     + ", ".join(f"{lang} {n}" for lang, n in sorted(langs.items(), key=lambda kv: str(kv[0]))) + " |"
                     for (kind, split), langs in sorted(rows.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="build only these sources")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tables = []
    wanted = set(args.only or PLANS)
    sources: list[tuple[str, Any]] = [("ntrex", None)] + [(name, None) for name in PLANS if name != "ntrex"]
    readers = {**dict(realtext_factchecks.readers()), **dict(realtext_wiki.readers()), **dict(rs.iter_all_lazy())}
    for name, _ in sources:
        if name not in wanted:
            continue
        plan = PLANS[name]
        if name == "ntrex":
            records = build_ntrex(plan)
        else:
            records = sample(name, dedupe(readers[name]()), plan)
            assign_splits(records, plan)
        records = [r for r in records if r["lang"]]
        path = write(name, records, plan.ship)
        logger.info("%s: %d records -> %s", name, len(records), path.relative_to(ROOT))
        tables.append(counts_table(name, records))
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    table = "| source | kind | split | n | by language |\n| --- | --- | --- | --- | --- |\n" + "\n".join(tables)
    (REPORT_DIR / "counts.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
