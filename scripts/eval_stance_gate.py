"""The default model with and without its stance gate, on the same texts; writes ``benchmarks/stance_gate.json``.

Two sets, each predicted twice (``load_model()`` and ``load_model(stance=False)``):

- real text written by others: the cells of ``scripts/eval_realtext.py`` (same sampling, report-only sources
  included when built); ``flagged`` for ordinary text and claims, ``role_debunk`` and ``flagged`` for debunks;
- held out by time: English EUvsDisinfo claims of the test period, claims_test.jsonl (test-period claims and
  debunks translated into 8 languages) and ordinary.jsonl ``heldout`` (written for this project).

    PYTHONPATH=$PWD python scripts/eval_stance_gate.py [--cap 60] [--output benchmarks/stance_gate.json]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
from pathlib import Path

from disinfo_clf import load_model
from disinfo_clf.data.realtext import load_realtext
from disinfo_clf.matching.index import load_index
from disinfo_clf.resources import DATA_DIR
from disinfo_clf.training.datasets import time_periods

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_realtext import REPORT_ONLY, ROOT, cells, sample  # noqa: E402


def heldout_texts() -> list[tuple[str, str, str]]:
    """``(text, language, kind)`` of the held-out sets."""
    def read(name: str) -> list[dict]:
        with open(DATA_DIR / "multilingual" / name, encoding="utf-8") as stream:
            return [json.loads(line) for line in stream if line.strip()]
    cases = load_index().cases
    periods, _, _ = time_periods([dt.date.fromisoformat(c.date) for c in cases])
    rows = [(c.claim, "en", "claim-test") for c, p in zip(cases, periods) if p == "test"]
    rows += [(r["text"], r["lang"], f"translated-{r['role']}") for r in read("claims_test.jsonl")]
    rows += [(r["text"], r["lang"], "ordinary-written") for r in read("ordinary.jsonl") if r["split"] == "heldout"]
    return rows


def heldout_rates(rows: list[tuple[str, str, str]], preds: list) -> dict[str, dict[str, dict[str, float]]]:
    """Share flagged per kind and language (and ``all``)."""
    acc: dict[str, dict[str, list[bool]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for (_, lang, kind), p in zip(rows, preds):
        flagged = bool(p.relevant) or bool(p.narratives)
        acc[kind][lang].append(flagged)
        acc[kind]["all"].append(flagged)
    return {kind: {lang: {"n": len(v), "flagged": round(sum(v) / len(v), 4)} for lang, v in sorted(d.items())}
            for kind, d in sorted(acc.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=60)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "stance_gate.json")
    args = parser.parse_args(argv)
    records = [{**r, "report_only": False} for r in load_realtext(splits={"dev", "test"})]
    records += [{**r, "report_only": True} for r in load_realtext(splits={"test"}, directory=REPORT_ONLY)]
    chosen = sample(records, args.cap, 5)
    held = heldout_texts()
    result: dict = {"what": "the default with (gated) and without (ungated, load_model(stance=False)) its stance gate",
                    "date": dt.date.today().isoformat(), "cap": args.cap}
    for name, model in (("gated", load_model()), ("ungated", load_model(stance=False))):
        result[name] = {"realtext": cells(chosen, model.predict([r["text"] for r in chosen])),
                        "heldout": heldout_rates(held, model.predict([t for t, _, _ in held]))}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    gated = {(c["source"], c["lang"], c["kind"], c["split"]): c for c in result["gated"]["realtext"]}
    for c in result["ungated"]["realtext"]:
        key = "role_debunk" if c["kind"] == "debunk" else "flagged"
        g = gated[(c["source"], c["lang"], c["kind"], c["split"])]
        print(f"{c['kind']:12} {c['source']:22} {c['lang']:3} {c['split']:5} n={c['n']:3}  {key}: {c[key]:.0%} -> {g[key]:.0%}")
    for kind, langs in result["ungated"]["heldout"].items():
        print(kind, " ".join(f"{lang} {v['flagged']:.0%}->{result['gated']['heldout'][kind][lang]['flagged']:.0%}"
                             for lang, v in langs.items()))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
