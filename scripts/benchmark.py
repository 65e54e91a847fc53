"""Speed of disinfo_clf on this machine, written to a JSON file (and a short table on stdout).

    python scripts/benchmark.py --output benchmarks/results.json [--quick] [--only SECTION ...]

Measures, in one run: the default (multilingual) model and the ``fast`` model through ``predict``
on short texts (database titles) and news articles of about 2,500 characters; the default's first
call and peak memory in a fresh process; two ratios, each pair's runs alternated in one process
so that they hold on a busy machine and travel to other machines: the default's whole
``predict`` against sentence-transformers ``encode`` (same weights, float32) on titles and
articles (``default_vs_st``), and the ``fast`` tier against the plain scikit-learn TF-IDF
one-vs-rest pipeline (``fast_vs_plain``, scripts/bench_fast.py); encoder inference against sentence-transformers' ``encode``
(scripts/bench_encoder.py); ``match`` and a 1M-vector index (scripts/bench_index.py); wall time
and peak memory of ``disinfo-clf score --model fast`` over 100,000 generated JSONL records; the
local engine against Ray with 1 and 2 workers on 20,000 records (scripts/bench_ray.py, ``fast``
model); a tiny encoder against ``transformers.pipeline`` (scripts/bench_tiny_encoder.py).
``--quick`` shrinks every size for a smoke run; ``--only SECTION`` reruns one section and keeps the
others of an existing output file. Rates, seconds and megabytes are this machine's.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench_common import compared, feed_texts, timed_runs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CLI = Path(sys.executable).with_name("disinfo-clf")
ARTICLE_CHARS = 2500

# Runs a command and prints its peak RSS in KiB: a small parent, so the children's peak is the command's.
PEAK_RSS_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)
FIRST_CALL = (
    "import time; t = time.perf_counter()\n"
    "try:\n    from disinfo_clf import predict\n"
    "except ImportError:\n    from disinfo_clf.prediction import predict\n"
    "predict('NATO promised not to expand east and lied.'); print(time.perf_counter() - t)"
)
TARGETS = {
    "default_titles_per_s": (">=", 200), "default_articles_per_s": (">=", 10), "default_first_call_s": ("<", 5.0),
    "default_peak_rss_mb": ("<", 1500.0), "fast_titles_per_s": (">=", 8000),
    "encoder_vs_sentence_transformers": (">=", 2.0), "match_1000_short_s": ("<=", 10.0),
    "index_1m_query_ms": ("<", 50.0), "score_wall_s": ("<", 120.0), "score_peak_rss_mb": ("<", 1024.0),
    "default_titles_vs_st_encode": (">=", 6.0), "fast_vs_plain_sklearn": (">=", 1.5),
}
"""Ratios (``*_vs_*``) travel to other machines; rates, seconds and megabytes are this machine's."""




def throughput(fn: Callable[[], Any], n: int, repeats: int) -> dict[str, Any]:
    """Items per second of ``fn`` (which processes ``n`` items): the median run, and every run."""
    times = timed_runs(fn, repeats)
    return {"per_s": round(n / statistics.median(times), 1), "runs_per_s": [round(n / t, 1) for t in times]}




def articles(n: int, size: int = ARTICLE_CHARS) -> list[str]:
    """News-article-sized texts from real review claims and disproofs: whole sentences, a paragraph
    per claim or disproof, cut at the sentence end nearest below ``size`` characters."""
    from disinfo_clf.data import load_review_csv
    from disinfo_clf.text.sentences import split_sentences

    out: list[str] = []
    current = ""
    for case in load_review_csv():
        for part in (case.claim, case.debunk):
            separator = "\n\n"
            for start, end in split_sentences(part or ""):
                sentence = part[start:end]
                if len(current) + len(sentence) + len(separator) > size and len(current) >= 0.8 * size:
                    out.append(current)
                    if len(out) == n:
                        return out
                    current, separator = "", ""
                current += (separator if current else "") + sentence
                separator = " "
    return out


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    import numpy
    import scipy
    import sklearn
    import torch
    import transformers

    from disinfo_clf import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        nproc = os.cpu_count() or 1
    return {
        "nproc": nproc, "cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
        "disinfo_clf": __version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__, "sklearn": sklearn.__version__, "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }


def bench_default(titles: list[str], docs: list[str], warmup: list[str], repeats: int, model_name: str) -> dict[str, Any]:
    from disinfo_clf import load_model, predict

    model = load_model(model_name)
    predict(warmup, model=model)  # texts not measured: loads the model, fills caches with other texts' words
    titles_rate = throughput(lambda: predict(titles, model=model), len(titles), repeats)
    articles_rate = throughput(lambda: predict(docs, model=model), len(docs), repeats)
    return {
        "model": model.model_id,
        "batch_size": "default",
        "n_titles": len(titles),
        "mean_title_chars": round(statistics.mean(map(len, titles))),
        "titles_per_s": titles_rate["per_s"],
        "titles_runs_per_s": titles_rate["runs_per_s"],
        "n_articles": len(docs),
        "mean_article_chars": round(statistics.mean(map(len, docs))),
        "articles_per_s": articles_rate["per_s"],
        "articles_runs_per_s": articles_rate["runs_per_s"],
        "note": "median of the runs; every text goes through predict (windows, narratives, role, language, "
                "relevance and matches where the model has them)",
    }


def bench_peak_rss(texts: list[str]) -> dict[str, Any]:
    """Peak memory of a fresh process that loads the default model and predicts ``texts``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "texts.json")
        path.write_text(json.dumps(texts), encoding="utf-8")
        code = (f"import json; from disinfo_clf import predict; predict(json.load(open({str(path)!r})))")
        result = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, sys.executable, "-c", code],
                                capture_output=True, text=True, check=True)
    return {"peak_rss_mb": round(int(result.stdout.strip().splitlines()[-1]) / 1024, 1),
            "peak_rss_measures": f"a fresh process: import, load the default model, predict {len(texts)} titles and articles"}


def bench_first_call(repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        result = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True)
        runs.append(float(result.stdout.strip().splitlines()[-1]))
    return {"first_call_s": round(statistics.median(runs), 3), "first_call_runs_s": [round(r, 3) for r in runs],
            "first_call_measures": "import disinfo_clf + load the default model + one predict, in a fresh process"}




def bench_score(n: int) -> dict[str, Any]:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp, "feed.jsonl"), Path(tmp, "scored.jsonl")
        texts = feed_texts(rng, n)
        with source.open("w", encoding="utf-8") as fh:
            for i, text in enumerate(texts):
                fh.write(json.dumps({"id": f"item-{i}", "text": text}, ensure_ascii=False) + "\n")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, str(CLI), "score", str(source), "-o", str(out),
                                 "--model", "fast"],
                                capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(f"disinfo-clf score failed ({result.returncode}): {result.stderr[-2000:]}")
        rows = sum(1 for _ in out.open(encoding="utf-8"))
    return {"records": n, "mean_chars": round(statistics.mean(map(len, texts))), "output_rows": rows,
            "wall_s": round(wall, 1), "records_per_s": round(n / wall, 1),
            "peak_rss_mb": round(int(result.stdout.strip().splitlines()[-1]) / 1024, 1),
            "measures": "the whole CLI process: start-up, model load, reading, scoring, writing"}


def bench_default_vs_st(titles: list[str], docs: list[str], warmup: list[str], repeats: int) -> dict[str, Any]:
    """The default's whole ``predict`` against sentence-transformers ``encode`` alone (the same
    e5-small weights, float32, batch 64, normalised, ``"query: "`` prefix), runs alternated."""
    from sentence_transformers import SentenceTransformer

    from disinfo_clf import load_model, predict
    from disinfo_clf.encoders import resolve_encoder

    model = load_model("default")
    st = SentenceTransformer(resolve_encoder(local_files_only=True), device="cpu")

    def encode(texts: list[str]) -> Any:
        return st.encode(["query: " + t for t in texts], batch_size=64, normalize_embeddings=True)

    predict(warmup, model=model)
    encode(warmup[:64])
    out: dict[str, Any] = {"measures": "predict: narratives, role, language, relevance and matches; encode: embeddings only"}
    for name, texts in (("titles", titles), ("articles", docs)):
        rates = compared({"default_predict": lambda texts=texts: predict(texts, model=model),
                          "st_encode": lambda texts=texts: encode(texts)}, len(texts), repeats)
        out[name] = {"n": len(texts), "mean_chars": round(statistics.mean(map(len, texts))),
                     **{f"{k}_per_s": v["per_s"] for k, v in rates.items()},
                     "ratio": round(rates["default_predict"]["per_s"] / rates["st_encode"]["per_s"], 2),
                     "runs_per_s": {k: v["runs_per_s"] for k, v in rates.items()}}
    return out


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    d, f, e = results.get("default_model", {}), results.get("fast_model", {}), results.get("encoder", {})
    st, plain = results.get("default_vs_st", {}), results.get("fast_vs_plain", {})
    i, sc = results.get("index", {}), results.get("score", {})
    auto = e.get("auto_backend")
    ratios = [e.get(k, {}).get("ratio_vs_sentence_transformers", {}).get(auto) for k in ("titles", "windows")]
    measured = {
        "default_titles_per_s": d.get("titles_per_s"), "default_articles_per_s": d.get("articles_per_s"),
        "default_first_call_s": d.get("first_call_s"), "default_peak_rss_mb": d.get("peak_rss_mb"),
        "fast_titles_per_s": f.get("titles_per_s"),
        "encoder_vs_sentence_transformers": min(ratios) if all(r is not None for r in ratios) else None,
        "match_1000_short_s": i.get("match_1000_short", {}).get("seconds"),
        "index_1m_query_ms": i.get("synthetic", {}).get("case_index_auto", {}).get("median_ms"),
        "score_wall_s": sc.get("wall_s"), "score_peak_rss_mb": sc.get("peak_rss_mb"),
        "default_titles_vs_st_encode": st.get("titles", {}).get("ratio"),
        "fast_vs_plain_sklearn": plain.get("ratio"),
    }
    out = {}
    for name, (op, target) in TARGETS.items():
        value = measured[name]
        met = None if value is None else {">=": value >= target, "<=": value <= target, "<": value < target}[op]
        out[name] = {"value": value, "target": f"{op} {target}", "met": met}
    return out


def _section(run: Callable[..., None], **kwargs: Any) -> dict[str, Any]:
    """The one section a helper script's ``run(results, ...)`` adds."""
    out: dict[str, Any] = {}
    run(out, **kwargs)
    return next(iter(out.values()))


def run_section(results: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one benchmark; a failure is recorded in the results rather than losing the others."""
    print(f"{name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # a benchmark run should report what it could measure
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results[name]["section_s"] = round(time.perf_counter() - started, 1)


def table(results: dict[str, Any]) -> str:
    lines = [f"{'measure':38} {'value':>12}  target", "-" * 62]
    for name, check in results["targets"].items():
        value = "n/a" if check["value"] is None else f"{check['value']:,}"
        mark = {True: "ok", False: "MISSED", None: "-"}[check["met"]]
        lines.append(f"{name:38} {value:>12}  {check['target']} {mark}")
    r = results.get("ray", {})
    if "local_records_per_s" in r:
        lines.append(f"{'score: local / ray 1 / ray 2 workers':38} {r['local_records_per_s']:,.0f} / "
                     f"{r['ray_1_worker_records_per_s']:,.0f} / {r['ray_2_workers_records_per_s']:,.0f} records/s")
    for name, section in results.items():
        if isinstance(section, dict) and "error" in section:
            lines.append(f"{name} FAILED: {section['error']}")
    return "\n".join(lines)


SECTIONS = ("default_model", "default_vs_st", "fast_model", "fast_vs_plain", "encoder", "index", "score", "ray",
            "tiny_encoder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                        help=f"run only this section (repeatable; one of {', '.join(SECTIONS)}); the other sections "
                             "of an existing --output file are kept")
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING)
    from disinfo_clf.data import load_database_csv

    quick = args.quick
    repeats = 1 if quick else 3
    titles = [c.title for c in load_database_csv() if c.title]
    docs = articles(60 if quick else 400)
    n_docs = 50 if quick else len(docs) - 10  # the rest only warm up
    output = Path(args.output)
    previous = json.loads(output.read_text(encoding="utf-8")) if args.only and output.is_file() else {}
    results: dict[str, Any] = {
        **previous,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
    }
    if args.only:
        results["sections_rerun"] = {name: results["date"] for name in args.only}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_encoder
    import bench_fast
    import bench_index
    import bench_ray
    import bench_tiny_encoder

    warmup = titles[-300:] + docs[n_docs:]
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "default_model": lambda: {
            **bench_default(titles[: 300 if quick else 2000], docs[: 10 if quick else 60], warmup, repeats, "default"),
            **bench_first_call(1 if quick else 3),
            **bench_peak_rss(titles[:500] + docs[:20]),
        },
        "default_vs_st": lambda: bench_default_vs_st(titles[: 200 if quick else 1200], docs[: 10 if quick else 40],
                                                     warmup, repeats),
        "fast_model": lambda: bench_default(titles[: 500 if quick else 5000], docs[:n_docs], warmup, repeats, "fast"),
        "fast_vs_plain": lambda: _section(bench_fast.run, titles=titles, repeats=2 if quick else 21),
        "encoder": lambda: _section(bench_encoder.run, quick=quick),
        "index": lambda: _section(bench_index.run, vectors=50_000 if quick else 1_000_000),
        "score": lambda: bench_score(2_000 if quick else 100_000),
        "ray": lambda: bench_ray.bench(1_000 if quick else 20_000, model="fast"),
        "tiny_encoder": lambda: _section(
            bench_tiny_encoder.run, titles=titles[: 256 if quick else 2000], tokenizer_texts=titles[: 2000 if quick else 8000],
            repeats=repeats),
    }
    for name in args.only or SECTIONS:
        run_section(results, name, sections[name])
    results["targets"] = check_targets(results)

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    m = results["machine"]
    print(f"{m['cpu']}, {m['nproc']} CPUs, Python {m['python']}, torch {m['torch']}, sklearn {m['sklearn']}"
          f"{' (quick run)' if quick else ''}")
    print(table(results))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
