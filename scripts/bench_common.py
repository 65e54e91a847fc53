"""What the benchmark scripts share: timing helpers and the feed texts they score.

Every ``scripts/bench_*.py`` imports from here, never from another script.
"""
from __future__ import annotations

import random
import statistics
import time
from typing import Any, Callable

from disinfo_clf.data import load_database_csv, load_review_csv


def timed_runs(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def compared(fns: dict[str, Callable[[], Any]], n: int, repeats: int) -> dict[str, dict[str, Any]]:
    """:func:`throughput` of several functions, their runs taken in turn, so that a busy spell
    of the machine slows all of them rather than one."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name] += timed_runs(fn, 1)
    return {name: {"per_s": round(n / statistics.median(t), 1), "runs_per_s": [round(n / x, 1) for x in t]}
            for name, t in times.items()}


def feed_texts(rng: random.Random, n: int) -> list[str]:
    """``n`` varied news-like texts from the real exports: titles, claims, disproofs, and short
    articles of two to six of them."""
    titles = [c.title for c in load_database_csv() if c.title]
    reviews = load_review_csv()
    claims = [c.claim for c in reviews if c.claim]
    disproofs = [c.debunk for c in reviews if c.debunk]
    pool = titles + claims + disproofs
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            out.append(rng.choice(titles))
        elif kind < 0.7:
            out.append(rng.choice(claims))
        elif kind < 0.8:
            out.append(rng.choice(disproofs))
        else:
            out.append("\n\n".join(rng.sample(pool, k=rng.randint(2, 6))))
    return out
