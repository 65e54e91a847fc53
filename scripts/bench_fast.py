"""The ``fast`` tier against the plain scikit-learn pipeline a user would write in ten lines.

    python scripts/bench_fast.py [--quick] [--output FILE]

``run(results, titles=...)`` adds ``results["fast_vs_plain"]``: titles per second of
``predict(titles, model="fast")`` (whole predictions: narratives, role, language, evidence) and of
``make_pipeline(make_union(TfidfVectorizer(word 1-2), TfidfVectorizer(char_wb 2-5)),
OneVsRestClassifier(LogisticRegression())).predict_proba(titles)`` (probabilities only), fitted on
the time-split training texts of the narrative task; both in one process, their runs taken in
turn (:func:`bench_common.compared`), so that the ratio holds on a busy machine too. The ratio
travels to other machines; the absolute rates are this machine's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_common import compared  # noqa: E402

TITLES = 1200
"""The issue's measure: the first 1,200 database titles."""


def plain_pipeline(texts: list[str], gold: Any) -> Any:
    """TF-IDF word + character n-grams, one logistic regression per label: scikit-learn defaults."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2))
    return make_pipeline(features, OneVsRestClassifier(LogisticRegression(max_iter=1000))).fit(texts, gold)


def run(results: dict[str, Any], *, titles: list[str], repeats: int = 5) -> None:
    """Add ``results["fast_vs_plain"]``: rates, their ratio, and the setup's cost."""
    from disinfo_clf import load_model, predict
    from disinfo_clf.config import TrainingConfig
    from disinfo_clf.taxonomy import load_taxonomy
    from disinfo_clf.training.train import load_splits

    started = time.perf_counter()
    train = load_splits(TrainingConfig(), load_taxonomy())["train"]
    plain = plain_pipeline(train.texts, train.gold)
    fit_s = time.perf_counter() - started
    model = load_model("fast")
    warmup = titles[-300:]
    predict(warmup, model=model)  # loads the model, fills word caches with other texts' words
    plain.predict_proba(warmup)
    measured = titles[:TITLES]
    rates = compared({"fast": lambda: predict(measured, model=model), "plain": lambda: plain.predict_proba(measured)},
                     len(measured), repeats)
    results["fast_vs_plain"] = {
        "n_titles": len(measured),
        "fast_per_s": rates["fast"]["per_s"], "plain_per_s": rates["plain"]["per_s"],
        "ratio": round(rates["fast"]["per_s"] / rates["plain"]["per_s"], 2),
        "runs_per_s": {k: v["runs_per_s"] for k, v in rates.items()},
        "plain_train_texts": len(train.texts), "plain_setup_s": round(fit_s, 1),
        "note": "ratio of medians, runs alternated in one process; fast = whole Prediction objects (narratives, "
                "role, language, evidence), plain = predict_proba only",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--output", help="JSON file to write (default: print)")
    args = parser.parse_args()
    from disinfo_clf.data import load_database_csv

    results: dict[str, Any] = {}
    run(results, titles=[c.title for c in load_database_csv() if c.title], repeats=2 if args.quick else 5)
    text = json.dumps(results, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
