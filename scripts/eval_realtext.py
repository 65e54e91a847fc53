"""Evaluate the shipped default model on real text written by others (issue 13); writes ``benchmarks/realtext.json``.

Reads the realtext ``dev`` and ``test`` splits: the shipped files in ``disinfo_clf/resources/data/realtext`` and,
when built (``scripts/build_realtext.py``), the report-only ones in ``runs/realtext/`` (labelled ``report_only``;
never trained or tuned on). Draws at most ``--cap`` items per source x language x kind x split with a fixed seed
and reports, per cell with its size:

- ``ordinary``: share flagged (``relevant`` True, or a narrative above its threshold) -- should be low;
- ``debunk``: share read as ``role == "debunk"`` -- should be high;
- ``claim``: share flagged (``relevant`` True) -- should be high;
- ``claim-other``: false claims on other topics (``OTHER_TOPIC_SOURCES``): share flagged -- should be low;
- ``hard`` (unlabelled state-outlet text): share flagged, for information.

    PYTHONPATH=$PWD python scripts/eval_realtext.py [--cap 60] [--output benchmarks/realtext.json] [--into MODEL_DIR]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import random
import sys
import time
from pathlib import Path

from disinfo_clf import predict
from disinfo_clf.data.realtext import OTHER_TOPIC_SOURCES, load_realtext

ROOT = Path(__file__).resolve().parents[1]
REPORT_ONLY = ROOT / "runs" / "realtext"
logger = logging.getLogger("eval_realtext")


def sample(records: list[dict], cap: int, min_size: int) -> list[dict]:
    """At most ``cap`` records per (source, lang, kind, split), seeded; cells under ``min_size`` dropped."""
    strata: dict[tuple, list[dict]] = collections.defaultdict(list)
    for rec in records:
        strata[(rec["source"], rec["lang"], rec["kind"], rec["split"])].append(rec)
    chosen = []
    for key in sorted(strata):
        recs = sorted(strata[key], key=lambda r: r["id"])
        if len(recs) >= min_size:
            chosen.extend(random.Random(f"13:{key}").sample(recs, min(cap, len(recs))))
    return chosen


def cells(records: list[dict], preds: list) -> list[dict]:
    """Counts and shares per (source, lang, kind, split)."""
    counts: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for rec, pred in zip(records, preds):
        kind = "claim-other" if rec["kind"] == "claim" and rec["source"] in OTHER_TOPIC_SOURCES else rec["kind"]
        c = counts[(rec["source"], rec["lang"], kind, rec["split"], rec["report_only"])]
        c["n"] += 1
        c["relevant"] += bool(pred.relevant)
        c["narratives"] += bool(pred.narratives)
        c["flagged"] += bool(pred.relevant) or bool(pred.narratives)
        c["role_debunk"] += pred.role == "debunk"
    rows = []
    for (source, lang, kind, split, report_only), c in sorted(counts.items()):
        n = c["n"]
        rows.append({"source": source, "lang": lang, "kind": kind, "split": split, "report_only": report_only, "n": n,
                     **{k: round(c[k] / n, 4) for k in ("relevant", "narratives", "flagged", "role_debunk")}})
    return rows


def pooled(rows: list[dict]) -> list[dict]:
    """Size-weighted shares per (split, kind, language), shipped and report-only apart."""
    acc: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        c = acc[(r["split"], r["kind"], r["lang"], r["report_only"])]
        c["n"] += r["n"]
        for k in ("relevant", "narratives", "flagged", "role_debunk"):
            c[k] += r[k] * r["n"]
    return [{"split": s, "kind": k, "lang": lang, "report_only": ro, "n": c["n"],
             **{m: round(c[m] / c["n"], 4) for m in ("relevant", "narratives", "flagged", "role_debunk")}}
            for (s, k, lang, ro), c in sorted(acc.items())]


def table(rows: list[dict]) -> str:
    """Markdown: the measure that matters for each kind first, then the rest."""
    lines = ["| source | lang | kind | split | n | flagged | relevant | narratives | role=debunk |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        name = r["source"] + (" *(report-only)*" if r["report_only"] else "")
        lines.append(f"| {name} | {r['lang']} | {r['kind']} | {r['split']} | {r['n']} | {r['flagged']:.0%} | "
                     f"{r['relevant']:.0%} | {r['narratives']:.0%} | {r['role_debunk']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=60, help="items per source x language x kind x split")
    parser.add_argument("--min-size", type=int, default=5, help="skip cells smaller than this")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "realtext.json"))
    parser.add_argument("--no-report-only", action="store_true", help="only the shipped files")
    parser.add_argument("--into", type=Path, default=None, metavar="MODEL_DIR",
                        help="also record the cells in MODEL_DIR/metrics.json (\"realtext\"), where the model card reads them")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = [{**r, "report_only": False} for r in load_realtext(splits={"dev", "test"})]
    if not args.no_report_only:
        records += [{**r, "report_only": True} for r in load_realtext(splits={"test"}, directory=REPORT_ONLY)]
    chosen = sample(records, args.cap, args.min_size)
    logger.info("predicting %d real texts", len(chosen))
    start = time.perf_counter()
    preds = predict([r["text"] for r in chosen], show_progress_bar=False)
    rows = cells(chosen, preds)
    result = {"what": "the shipped default model on real text written by others (realtext dev + test); "
                      "flagged = relevant or a narrative above its threshold",
              "date": dt.date.today().isoformat(), "cap": args.cap, "seconds": round(time.perf_counter() - start, 1),
              "report_only_built": REPORT_ONLY.is_dir() and any(REPORT_ONLY.glob("*.jsonl")),
              "cells": rows, "pooled": pooled(rows)}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"\nwrote {out} ({len(chosen)} texts, {result['seconds']} s)")
    if args.into is not None:
        metrics_path = args.into / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics["realtext"] = {k: result[k] for k in ("what", "date", "cap", "cells")}
        metrics_path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"recorded the cells in {metrics_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
