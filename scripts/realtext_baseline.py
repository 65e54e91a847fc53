"""Measure the default model on the real-text corpus (dev + test): ordinary flagged, debunks read as debunks, claims flagged.

Reads the shipped files and, when built, the report-only ones in ``runs/realtext/``; draws at most ``--cap`` items per
(source, language, kind) with a fixed seed; writes ``runs/realtext/baseline.json`` and prints a markdown table.

    PYTHONPATH=$PWD python scripts/realtext_baseline.py [--cap 40]
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import random
import sys
from pathlib import Path

from disinfo_clf import predict

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = [ROOT / "disinfo_clf" / "resources" / "data" / "realtext", ROOT / "runs" / "realtext"]
logger = logging.getLogger("realtext_baseline")


def load(splits: set[str]) -> list[dict]:
    """Every record of the given splits, shipped files first."""
    out = []
    for folder in FOLDERS:
        for path in sorted(folder.glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                out.extend(r for r in map(json.loads, fh) if r["split"] in splits)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=40, help="items per (source, language, kind)")
    parser.add_argument("--ntrex-cap", type=int, default=15, help="items per NTREX language")
    parser.add_argument("--min-size", type=int, default=5, help="skip strata smaller than this")
    parser.add_argument("--sources", nargs="*", help="measure only these sources")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    strata = collections.defaultdict(list)
    for rec in load({"dev", "test"}):
        if args.sources and rec["source"] not in args.sources:
            continue
        strata[(rec["source"], rec["lang"], rec["kind"], rec["split"])].append(rec)
    chosen = []
    for key in sorted(strata):
        recs = sorted(strata[key], key=lambda r: r["id"])
        cap = args.ntrex_cap if key[0] == "ntrex" else args.cap
        if len(recs) >= args.min_size:
            chosen.extend(random.Random(f"13:{key}").sample(recs, min(cap, len(recs))))
    logger.info("predicting %d texts", len(chosen))
    preds = predict([r["text"] for r in chosen], show_progress_bar=False)
    rows = collections.defaultdict(lambda: collections.Counter())
    for rec, pred in zip(chosen, preds):
        c = rows[(rec["source"], rec["lang"], rec["kind"], rec["split"])]
        c["n"] += 1
        c["relevant"] += bool(pred.relevant)
        c["narratives"] += bool(pred.narratives)
        c["debunk"] += pred.role == "debunk"
        c["relevant_claim"] += bool(pred.relevant) and pred.role == "claim"
    out = ROOT / "runs" / "realtext" / ("baseline.json" if not args.sources else f"baseline_{'_'.join(args.sources)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([dict(zip(("source", "lang", "kind", "split"), k), **v) for k, v in sorted(rows.items())],
                              indent=1), encoding="utf-8")
    print("| source | lang | kind | split | n | relevant | narratives | role=debunk | relevant & role=claim |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (source, lang, kind, split), c in sorted(rows.items()):
        n = c["n"]
        print(f"| {source} | {lang} | {kind} | {split} | {n} | {c['relevant'] / n:.0%} | {c['narratives'] / n:.0%} | "
              f"{c['debunk'] / n:.0%} | {c['relevant_claim'] / n:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
