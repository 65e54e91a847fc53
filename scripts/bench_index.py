"""Benchmark of known-case matching: `match` with the shipped index, and a 1M-vector index.

    python scripts/bench_index.py [--vectors 1000000] [--output FILE]

``run(results)`` adds ``results["index"]``:

- ``match_1000_short``: seconds for ``match(texts, k=5)`` on 1,000 short texts (database case
  titles, 68 characters at the median) with the shipped index and the default encoder, already
  loaded (its load time is reported separately);
- ``synthetic``: an index of ``--vectors`` synthetic unit vectors spread like the shipped case
  embeddings (mixes of two real ones plus noise): build time of the faiss IVF layout, per-query
  latency (one query at a time, median and p95 over 200 queries, each a perturbed indexed vector)
  of the exact search and of faiss at several ``nprobe``, and faiss's recall@10 against the
  exact answer.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from disinfo_clf.matching.casefile import IndexedCase
from disinfo_clf.matching.index import CaseIndex, IndexMeta, encoder_for, load_index
from disinfo_clf.matching.search import match
from disinfo_clf.matching.vectors import exact_topk, ivf_index, train_ivf


def _short_texts(n: int) -> list[str]:
    from disinfo_clf.matching.casefile import vendored_cases

    titles = [c.title for c in vendored_cases() if len(c.title) < 120]
    step = max(1, len(titles) // n)
    return titles[::step][:n]


def bench_match(results: dict[str, Any], n: int = 1000) -> None:
    index = load_index()
    started = time.perf_counter()
    encoder = encoder_for(index)
    encoder.embed(["warm-up"])
    load = time.perf_counter() - started
    texts = _short_texts(n)
    started = time.perf_counter()
    found = match(texts, k=5, encoder=encoder)
    elapsed = time.perf_counter() - started
    assert len(found) == n
    results["match_1000_short"] = {"texts": n, "seconds": round(elapsed, 2), "texts_per_s": round(n / elapsed, 1),
                                   "encoder_load_seconds": round(load, 2), "cases": len(index),
                                   "backend": getattr(encoder, "backend", "?"), "target_seconds": 10}


def _synthetic(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors spread like real case embeddings: a random mix of two shipped case embeddings
    (weights 0.5–1 and the rest) plus Gaussian noise (per-component sd 0.02)."""
    base = load_index().embeddings
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        a = rng.uniform(0.5, 1.0, size=(m, 1)).astype(np.float32)
        block = a * base[rng.integers(len(base), size=m)] + (1 - a) * base[rng.integers(len(base), size=m)]
        block += rng.normal(scale=0.02, size=block.shape).astype(np.float32)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _latency(search, queries: np.ndarray) -> dict[str, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q[None, :])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * len(times)) - 1], 2)}


def bench_synthetic(results: dict[str, Any], n: int = 1_000_000, queries: int = 200) -> None:
    vectors = _synthetic(n)
    dim = vectors.shape[1]
    rng = np.random.default_rng(1)
    q = vectors[rng.choice(n, queries, replace=False)] + rng.normal(scale=0.02, size=(queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out: dict[str, Any] = {"vectors": n, "dim": dim, "queries": queries}
    out["exact"] = _latency(lambda x: exact_topk(x, vectors, 10), q[:50])
    started = time.perf_counter()
    exact = exact_topk(q, vectors, 10)[1]
    out["exact"]["batch_of_200_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    centroids, assign = train_ivf(vectors)
    index = ivf_index(vectors, centroids, assign)
    out["faiss_ivf"] = {"lists": len(centroids), "build_seconds": round(time.perf_counter() - started, 1)}
    for nprobe in (16, 64, 256):
        index.nprobe = nprobe
        found = index.search(q, 10)[1]
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
        out["faiss_ivf"][f"nprobe_{nprobe}"] = {**_latency(lambda x: index.search(x, 10), q), "recall_at_10": round(recall, 3)}
    # The same through CaseIndex (what match(..., index=DIR) runs), default nprobe.
    cases = [IndexedCase(id=str(i), url=None, title="", claim="", date=None) for i in range(n)]
    meta = IndexMeta(count=n, dim=dim, encoder="synthetic", encoder_fingerprint="", data_sha256="", texts_sha256="")
    case_index = CaseIndex(cases, vectors, meta, ivf=(centroids, assign))
    case_index.neighbours(q[:1], 5)  # builds the faiss index from the stored layout
    auto = _latency(lambda x: case_index.search(x, 5), q)
    found = case_index.neighbours(q, 10)[1]
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
    out["case_index_auto"] = {**auto, "nprobe": int(case_index._faiss.nprobe) if case_index._faiss is not None else None, "recall_at_10": round(recall, 3),
                              "target_ms": 50}
    results["synthetic"] = out


def run(results: dict[str, Any], *, vectors: int = 1_000_000) -> None:
    """Add the matching figures under ``results["index"]``."""
    section: dict[str, Any] = {"cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    bench_match(section)
    bench_synthetic(section, n=vectors)
    results["index"] = section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    run(results, vectors=args.vectors)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
