"""Sentence-role accuracy of ``segment`` on the five seed documents against hand-labelled gold.

Usage: ``python scripts/seed_accuracy.py OUTPUT.json [--gold tests/data/seed_gold.json] [--cue-model]``

The gold (``tests/data/seed_gold.json``) holds one record per sentence of every seed:
``{file, line, start, end, label, text}``. A gold sentence counts as correct when the label
``segment`` gives most of its non-whitespace characters equals the gold label, so the measure
survives changes to the sentence splitter. Without ``--cue-model`` the shipped role model is
used when present (else segmentation falls back to cue words and says so in the log).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from disinfo_clf.data.cases import SPAN_LABELS, Span
from disinfo_clf.data.documents import segment
from disinfo_clf.models.roles import CueRoleModel, RoleModel
from disinfo_clf.resources import ROLE_MODEL_DIR, SEEDS_DIR

DEFAULT_GOLD = Path(__file__).resolve().parents[1] / "tests" / "data" / "seed_gold.json"


def load_gold(path: str | Path = DEFAULT_GOLD) -> list[dict[str, Any]]:
    """The gold sentence records, checked against the seed texts they point into."""
    gold = json.loads(Path(path).read_text(encoding="utf-8"))
    texts: dict[str, str] = {}
    for i, record in enumerate(gold):
        name = record["file"]
        text = texts.setdefault(name, (SEEDS_DIR / name).read_text(encoding="utf-8"))
        if text[record["start"]:record["end"]] != record["text"] or record["label"] not in SPAN_LABELS:
            raise ValueError(f"{path}, record {i} ({name}, line {record['line']}): offsets or label do not match the seed")
    return gold


def predicted_label(spans: Sequence[Span], text: str, start: int, end: int) -> str:
    """The label ``spans`` give most non-whitespace characters of ``text[start:end]`` (``"none"`` if uncovered)."""
    votes: Counter[str] = Counter()
    for span in spans:
        lo, hi = max(span.start, start), min(span.end, end)
        if lo < hi:
            votes[span.label] += sum(not ch.isspace() for ch in text[lo:hi])
    return votes.most_common(1)[0][0] if votes else "none"


def seed_accuracy(gold: Sequence[dict[str, Any]], role_model: RoleModel | None = None) -> dict[str, Any]:
    """Accuracy overall and per seed file, and the confusion counts ``gold -> predicted``."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for record in gold:
        by_file.setdefault(record["file"], []).append(record)
    per_file: dict[str, float] = {}
    confusion: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    correct = 0
    for name, records in sorted(by_file.items()):
        text = (SEEDS_DIR / name).read_text(encoding="utf-8")
        spans = segment(text, role_model=role_model)
        hits = 0
        for record in records:
            label = predicted_label(spans, text, record["start"], record["end"])
            confusion[f"{record['label']}->{label}"] += 1
            hits += label == record["label"]
            if label != record["label"]:
                errors.append({"file": name, "line": record["line"], "gold": record["label"], "predicted": label,
                               "text": record["text"][:120]})
        per_file[name] = hits / len(records)
        correct += hits
    return {
        "sentences": len(gold),
        "accuracy": correct / len(gold) if gold else 0.0,
        "per_file": per_file,
        "confusion": dict(sorted(confusion.items())),
        "errors": errors,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="JSON file to write the accuracy report to")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold sentence labels (default: %(default)s)")
    parser.add_argument("--cue-model", action="store_true", help="use the cue-word stand-in instead of the shipped role model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    role_model = CueRoleModel() if args.cue_model else None
    report = seed_accuracy(load_gold(args.gold), role_model)
    report["role_model"] = "cue words" if args.cue_model or not ROLE_MODEL_DIR.is_dir() else str(ROLE_MODEL_DIR)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"seed segmentation accuracy {report['accuracy']:.3f} on {report['sentences']} sentences "
          f"({report['role_model']}); written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
