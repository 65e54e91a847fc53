"""Can the int8 encoder run batched with embeddings that do not depend on batch mates? (issue 16)

    python scripts/int8_batch_study.py --work DIR [--output FILE]

Builds, in ``DIR`` (reused when already there), from the float32 ONNX export of the default
encoder: ``static-minmax`` (ONNX Runtime ``quantize_static``, QDQ, int8 weights per channel and
int8 activations with ranges calibrated once on 64 database titles and review claims; the early
feed-forward output projections stay float32 as in today's recipe) and ``nbits-b32-a4`` /
``nbits-b32-a0`` (weight-only int8: every MatMul with a constant weight becomes
``com.microsoft.MatMulNBits``, bits 8, blocks of 32, symmetric; accuracy level 4 quantises each
row's activations block by block, level 0 computes in float32). On ~300 texts of eight languages
from ``claims_dev.jsonl`` (first clauses, title-like, and 400-character windows of the
language's claims run together) it reports, per candidate and for float32:

- (a) the largest absolute difference between a text's embedding alone and in batches of 7, 32
  and 64 (length-sorted as ``Encoder.embed`` makes them, random padded, equal lengths only) and
  with padding alone;
- (b) the cosine to float32 embeddings (mean, min); today's int8 for comparison;
- (c) texts per second batched (64) against today's int8 one text per run, runs alternated.

Nothing here changes a shipped model or recipe.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import compared  # noqa: E402

CANDIDATES = ("static-minmax", "nbits-b32-a4", "nbits-b32-a0")


def study_texts(per_language: int = 20) -> list[str]:
    """Title-like first clauses and 400-character windows, ``per_language`` of each per language."""
    from disinfo_clf.resources import DATA_DIR
    from disinfo_clf.text.sentences import text_windows

    by_language: dict[str, list[str]] = {}
    for line in (DATA_DIR / "multilingual" / "claims_dev.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_language.setdefault(row["lang"], []).append(row["text"])
    out = []
    for claims in by_language.values():
        out += [c.split(". ")[0][:120] for c in claims[:per_language]]
        joined = " ".join(claims)
        out += [joined[s:e] for s, e in text_windows(joined)[:per_language]]
    return out


def calibration_texts() -> list[str]:
    from disinfo_clf.data import load_database_csv, load_review_csv

    return [c.title for c in load_database_csv() if c.title][5000:5040] + \
        [c.claim[:400] for c in load_review_csv() if c.claim][200:224]


def build(work: Path, directory: Path) -> None:
    """The float32 export and the candidates, each only when missing."""
    from disinfo_clf.encoders.onnx import export_onnx

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "fp32.onnx").exists():
        export_onnx(directory, work / "fp32.onnx", quantized=False)
    if not (work / "static-minmax.onnx").exists():
        build_static(work, directory)
    for level in (4, 0):
        if not (work / f"nbits-b32-a{level}.onnx").exists():
            build_nbits(work / "fp32.onnx", work / f"nbits-b32-a{level}.onnx", block=32, accuracy=level)


def build_static(work: Path, directory: Path) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from disinfo_clf.encoders.onnx import _FFN_OUTPUT, FP32_FFN_OUTPUT_LAYERS

    probe = Probe(work / "fp32.onnx", directory)
    ids = [e.ids for e in probe._encode(["query: " + t for t in calibration_texts()])]
    feeds = iter([{"input_ids": np.array([i], np.int64), "attention_mask": np.ones((1, len(i)), np.int64)} for i in ids])

    class Reader:
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    graph = onnx.load(str(work / "fp32.onnx"), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and (m := _FFN_OUTPUT.search(n.name))
            and int(m.group(1)) < 12 * FP32_FFN_OUTPUT_LAYERS]
    quantize_static(str(work / "fp32.onnx"), str(work / "static-minmax.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"], per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=keep, calibrate_method=CalibrationMethod.MinMax,
                    use_external_data_format=True, extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": True})


def build_nbits(source: Path, target: Path, *, block: int, accuracy: int) -> None:
    """Every MatMul with a constant ``[K, N]`` weight as ``MatMulNBits`` (8 bits, zero point 128)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight).astype(np.float32)
        k, n = w.shape
        blocks = -(-k // block)
        padded = np.zeros((blocks * block, n), np.float32)
        padded[:k] = w
        grouped = padded.T.reshape(n, blocks, block)
        scale = np.abs(grouped).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        quantized = (np.clip(np.rint(grouped / scale[:, :, None]), -127, 127) + 128).astype(np.uint8)
        base = node.name.replace("/", "_")
        graph.initializer.extend([numpy_helper.from_array(quantized, f"{base}_q"),
                                  numpy_helper.from_array(scale.astype(np.float32).ravel(), f"{base}_s")])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{base}_q", f"{base}_s"], list(node.output),
                                      name=f"{node.name}_nbits", domain="com.microsoft", K=k, N=n, bits=8,
                                      block_size=block, accuracy_level=accuracy))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{target.name}.data")


def Probe(path: Path, directory: Path, threads: int | None = None) -> Any:  # noqa: N802 (a class factory)
    """An Encoder running the ONNX model at ``path`` in batches (no token budget)."""
    import onnxruntime as ort

    from disinfo_clf.encoders.base import Encoder

    class _Probe(Encoder):
        backend = "probe"

        def __init__(self) -> None:
            super().__init__("study", directory, threads=threads, tokens_per_batch=1 << 20)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=["SkipLayerNormFusion"])

        def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return _Probe()


def _rows(encoder: Any, ids: list[list[int]], rows: np.ndarray, width: int) -> np.ndarray:
    batch = np.full((len(rows), width), encoder.pad_id, np.int64)
    mask = np.zeros_like(batch)
    for i, row in enumerate(rows):
        batch[i, :len(ids[row])], mask[i, :len(ids[row])] = ids[row], 1
    return encoder._forward(batch, mask)


def independence(encoder: Any, texts: list[str]) -> dict[str, Any]:
    """(a): the largest difference to each text's embedding alone, per way of batching."""
    ids = [e.ids for e in encoder._encode(["query: " + t for t in texts])]
    alone = np.stack([_rows(encoder, ids, np.array([i]), len(ids[i]))[0] for i in range(len(texts))])
    lengths = np.array(list(map(len, ids)))
    out: dict[str, Any] = {"padding_only": max(float(np.abs(_rows(encoder, ids, np.array([i]), len(ids[i]) + 9)[0] - alone[i]).max())
                                               for i in range(0, len(texts), 10))}
    for size in (7, 32, 64):
        order = np.random.default_rng(size).permutation(len(texts))
        shuffled = np.empty_like(alone)
        for s in range(0, len(texts), size):
            rows = order[s:s + size]
            shuffled[rows] = _rows(encoder, ids, rows, int(lengths[rows].max()))
        equal = [np.abs(_rows(encoder, ids, r, int(lengths[r[0]])) - alone[r]).max()
                 for length in np.unique(lengths) for r in [np.flatnonzero(lengths == length)[:size]] if len(r) > 1]
        out[f"batch_{size}"] = {"sorted": float(np.abs(encoder.embed(texts, batch_size=size) - alone).max()),
                                "random_padded": float(np.abs(shuffled - alone).max()),
                                "equal_lengths": float(max(equal, default=0.0)),
                                "texts_differing_random": int((np.abs(shuffled - alone).max(axis=1) > 0).sum())}
    out["alone"] = alone
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, type=Path, help="folder for the float32 export and the candidates")
    parser.add_argument("--output", type=Path, help="JSON file to write (default: print)")
    args = parser.parse_args()
    from disinfo_clf.encoders import load_encoder, resolve_encoder

    directory = Path(resolve_encoder(local_files_only=True))
    build(args.work, directory)
    texts = study_texts()
    today = load_encoder(directory, backend="onnx-int8")
    results: dict[str, Any] = {"texts": len(texts), "mean_chars": round(statistics.mean(map(len, texts)))}
    fp32 = independence(Probe(args.work / "fp32.onnx", directory), texts)
    reference = fp32.pop("alone")
    results["fp32"] = fp32
    cosine = (today.embed(texts) * reference).sum(axis=1)
    results["today_int8"] = {"cos_mean": round(float(cosine.mean()), 5), "cos_min": round(float(cosine.min()), 5)}
    encoders = {name: Probe(args.work / f"{name}.onnx", directory) for name in CANDIDATES}
    for name, encoder in encoders.items():
        found = independence(encoder, texts)
        cosine = (found.pop("alone") * reference).sum(axis=1)
        results[name] = {**found, "cos_mean": round(float(cosine.mean()), 5), "cos_min": round(float(cosine.min()), 5)}
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    runs = {"today_int8_one_per_run": lambda: today.embed(texts),
            **{f"{name}_batched_64": (lambda e=e: e.embed(texts, batch_size=64)) for name, e in encoders.items()}}
    started = time.perf_counter()
    rates = compared(runs, len(texts), 3)
    base = rates["today_int8_one_per_run"]["per_s"]
    results["throughput"] = {"per_s": {k: v["per_s"] for k, v in rates.items()},
                             "ratio_to_today": {k: round(v["per_s"] / base, 2) for k, v in rates.items()},
                             "seconds": round(time.perf_counter() - started, 1)}
    text = json.dumps(results, indent=2)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
