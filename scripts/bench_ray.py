"""Throughput of ``score`` with the local engine and with the Ray engine (1 and 2 workers) on the
same generated JSONL feed, with the embedded default model.

    python scripts/bench_ray.py [--records 20000] [--output ray.json]

``run(results)`` adds ``results["ray"]``: records/s of each engine (whole runs: the Ray runs
include starting the actors and loading the model in each, not starting Ray itself), the ratios,
and Ray's fixed cost (a run over a few records). Ray runs on a local cluster of this machine's
CPUs; scripts/benchmark.py calls ``run``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RECORDS = 20_000
SHARD_SIZE = 1_000


def news_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` news-like texts from the vendored exports (the same mix as benchmark.py's score feed)."""
    from bench_common import feed_texts

    return feed_texts(random.Random(seed), n)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(records: int = RECORDS, shard_size: int = SHARD_SIZE, model: str | None = None) -> dict[str, Any]:
    """Local engine vs Ray with 1 and 2 workers on the same ``records`` records, with ``model`` (a
    directory or tier name; ``None``: the default)."""
    import ray

    from disinfo_clf import load_model
    from disinfo_clf.scoring.ray.engine import score_ray
    from disinfo_clf.scoring import score

    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        source, tiny = Path(tmp, "feed.jsonl"), Path(tmp, "tiny.jsonl")
        texts = news_texts(records)
        with source.open("w", encoding="utf-8") as stream:
            for i, text in enumerate(texts):
                stream.write(json.dumps({"id": f"item-{i}", "text": text}, ensure_ascii=False) + "\n")
        tiny.write_text("".join(json.dumps({"id": f"t{i}", "text": texts[i]}) + "\n" for i in range(8)), encoding="utf-8")
        loaded = load_model(model)
        loaded.predict(texts[-200:])  # warm caches with texts outside the measured ones' order
        local_s = _timed(lambda: score([source], Path(tmp, "local.jsonl"), model=loaded, show_progress_bar=False))
        started_ray = not ray.is_initialized()
        if started_ray:
            ray.init(num_cpus=nproc, include_dashboard=False, configure_logging=False, log_to_driver=False)
        try:
            fixed_s = _timed(lambda: score_ray([tiny], Path(tmp, "ray-tiny"), model=model, workers=1, show_progress_bar=False))
            ray_s = {n: _timed(lambda n=n: score_ray([source], Path(tmp, f"ray-{n}"), model=model, workers=n, shard_size=shard_size,
                                                     show_progress_bar=False))
                     for n in (1, 2)}
        finally:
            if started_ray:
                ray.shutdown()
        rows = [sum(1 for p in Path(tmp, f"ray-{n}").glob("part-*.jsonl") for _ in p.open(encoding="utf-8")) for n in (1, 2)]
    local_rate = records / local_s
    rates = {n: records / s for n, s in ray_s.items()}
    return {
        "records": records, "mean_chars": round(sum(map(len, texts)) / len(texts)), "shard_size": shard_size,
        "nproc": nproc, "ray": ray.__version__, "model": loaded.model_id,
        "local_s": round(local_s, 1), "local_records_per_s": round(local_rate, 1),
        "ray_1_worker_s": round(ray_s[1], 1), "ray_1_worker_records_per_s": round(rates[1], 1),
        "ray_2_workers_s": round(ray_s[2], 1), "ray_2_workers_records_per_s": round(rates[2], 1),
        "ratio_ray_1_vs_local": round(rates[1] / local_rate, 2), "ratio_ray_2_vs_local": round(rates[2] / local_rate, 2),
        "ratio_ray_2_vs_1": round(rates[2] / rates[1], 2), "ray_fixed_cost_s": round(fixed_s, 1),
        "output_rows": {"ray_1_worker": rows[0], "ray_2_workers": rows[1]},
        "measures": "whole score calls on a preloaded model (local) / a running local Ray (start actors, load the "
                    "model in each, read, score, write part files and manifest)",
    }


def run(results: dict[str, Any]) -> None:
    """Add ``results["ray"]`` (see the module docstring); a failure is recorded there instead."""
    try:
        results["ray"] = bench()
    except Exception as exc:  # a benchmark run should report what it could measure
        results["ray"] = {"error": f"{type(exc).__name__}: {exc}"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE)
    parser.add_argument("--output", help="JSON file to write (default: print)")
    args = parser.parse_args(argv)
    result = bench(args.records, args.shard_size)
    text = json.dumps({"ray": result}, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
