"""Speed of disinfo_clf on this machine, written to a JSON file.

    python scripts/benchmark.py --output benchmarks/results.json [--quick]

Measures: the default model through ``predict`` on short texts (database titles) and on news
articles of about 2,500 characters; its first call in a fresh process; a tiny encoder through
``predict``/``EncoderClassifier`` against ``transformers.pipeline`` on the same model, texts and
batch size; and wall time and peak memory of ``disinfo-clf score`` over a generated JSONL.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("disinfo-clf")

# Runs a command and prints its peak RSS in KiB: a small parent, so the child's peak is its own.
PEAK_RSS_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def rate(fn: Callable[[], Any], n: int, repeats: int) -> float:
    """Median items per second of ``fn`` (which processes ``n`` items) over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def articles(n: int, size: int = 2500) -> list[str]:
    """News-article-sized texts built from real review claims and disproofs, cut at sentence ends."""
    from disinfo_clf.data import load_review_csv

    out, buf = [], ""
    for case in load_review_csv():
        for part in (case.claim, case.debunk):
            buf += part.strip() + "\n\n"
            if len(buf) >= size:
                cut = buf.rfind(". ", 0, size + 200)
                out.append(buf[: cut + 1] if cut > size // 2 else buf[:size])
                buf = ""
                if len(out) == n:
                    return out
    return out


def bench_default(titles: list[str], docs: list[str], repeats: int) -> dict[str, Any]:
    from disinfo_clf import load_model, predict

    model = load_model()
    predict(titles[:200])
    return {
        "model": model.model_id,
        "titles_per_s": round(rate(lambda: predict(titles), len(titles), repeats), 1),
        "n_titles": len(titles),
        "articles_per_s": round(rate(lambda: predict(docs), len(docs), repeats), 1),
        "n_articles": len(docs),
        "mean_article_chars": round(statistics.mean(map(len, docs))),
    }


def bench_first_call() -> dict[str, Any]:
    code = ("import time; t = time.perf_counter(); from disinfo_clf import predict; "
            "predict('NATO promised not to expand east and lied.'); print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return {"first_call_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs]}


def bench_encoder(titles: list[str], batch_size: int, repeats: int) -> dict[str, Any]:
    import torch
    from transformers import pipeline

    from disinfo_clf import predict
    from disinfo_clf.models.base import MULTI_LABEL, ModelMeta
    from disinfo_clf.models.encoder import EncoderClassifier, load_pretrained_encoder
    from disinfo_clf.models.tiny import build_tiny_encoder
    from disinfo_clf.resources import ROLE_MODEL_DIR
    from disinfo_clf.taxonomy import load_taxonomy

    labels = load_taxonomy().ids
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_encoder(Path(tmp, "base"), texts=titles, vocab_size=8000)
        tokenizer, model = load_pretrained_encoder(str(base), local_files_only=True, labels=labels, problem_type=MULTI_LABEL)
        meta = ModelMeta(backend="encoder", task="narrative", labels=labels, problem_type=MULTI_LABEL, max_length=128)
        clf = EncoderClassifier(model, tokenizer, meta)
        directory = Path(tmp, "model")
        clf.save_pretrained(directory)
        os.symlink(ROLE_MODEL_DIR, directory / "role")
        ours = EncoderClassifier.from_pretrained(directory)
        pipe = pipeline("text-classification", model=str(directory), top_k=None, device=-1)
        ours.predict_proba(titles[:128], batch_size=batch_size)
        pipe(titles[:128], batch_size=batch_size)
        r_ours = rate(lambda: ours.predict_proba(titles, batch_size=batch_size), len(titles), repeats)
        r_pipe = rate(lambda: pipe(titles, batch_size=batch_size), len(titles), repeats)
        predict(titles[:64], model=directory, batch_size=batch_size)
        r_predict = rate(lambda: predict(titles, model=directory, batch_size=batch_size), len(titles), repeats)
    return {
        "encoder": "tiny BERT (2 layers, hidden 128), 18 narrative labels",
        "torch_threads": torch.get_num_threads(),
        "n_texts": len(titles),
        "batch_size": batch_size,
        "encoder_predict_proba_per_s": round(r_ours, 1),
        "predict_per_s": round(r_predict, 1),
        "pipeline_per_s": round(r_pipe, 1),
        "ratio_predict_proba_vs_pipeline": round(r_ours / r_pipe, 2),
        "ratio_predict_vs_pipeline": round(r_predict / r_pipe, 2),
    }


def bench_score(texts: Sequence[str], n: int) -> dict[str, Any]:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp, "feed.jsonl"), Path(tmp, "scored.jsonl")
        with source.open("w", encoding="utf-8") as fh:
            for i in range(n):
                text = " ".join(rng.sample(list(texts), k=rng.randint(1, 3)))
                fh.write(json.dumps({"id": f"item-{i}", "title": f"Item {i}", "text": text}) + "\n")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, str(CLI), "score", str(source), "-o", str(out)],
                                capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        rows = sum(1 for _ in out.open(encoding="utf-8"))
    return {"records": n, "output_rows": rows, "wall_s": round(wall, 1), "records_per_s": round(n / wall, 1),
            "peak_rss_mb": round(int(result.stdout.strip().splitlines()[-1]) / 1024, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)

    from disinfo_clf.data import load_database_csv

    titles = [c.title for c in load_database_csv()]
    quick = args.quick
    repeats = 1 if quick else 3
    import sklearn
    import torch

    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__, "sklearn": sklearn.__version__},
        "quick": quick,
    }
    print("default model ...", file=sys.stderr)
    results["default_model"] = bench_default(titles[: 500 if quick else 5000], articles(50 if quick else 400), repeats)
    results["default_model"].update(bench_first_call())
    print("score ...", file=sys.stderr)
    results["score"] = bench_score(titles, 2_000 if quick else 100_000)
    print("tiny encoder ...", file=sys.stderr)
    results["tiny_encoder"] = bench_encoder(titles[: 256 if quick else 2000], 64, repeats)

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    d, s, e = results["default_model"], results["score"], results["tiny_encoder"]
    print(f"default model: {d['titles_per_s']:.0f} titles/s, {d['articles_per_s']:.0f} articles/s, "
          f"first call {d['first_call_s']:.2f} s")
    print(f"score: {s['records']:,} records in {s['wall_s']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
    print(f"tiny encoder: predict_proba {e['encoder_predict_proba_per_s']:.0f}/s, predict {e['predict_per_s']:.0f}/s, "
          f"pipeline {e['pipeline_per_s']:.0f}/s (x{e['ratio_predict_proba_vs_pipeline']}, x{e['ratio_predict_vs_pipeline']})")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
