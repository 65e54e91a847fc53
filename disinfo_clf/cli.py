"""The ``disinfo-clf`` command: argument parsing only; every command calls a library function."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

logger = logging.getLogger("disinfo_clf")


def _cmd_data_build(args: argparse.Namespace) -> int:
    from .datasets import SplitReport, build_datasets

    out = Path(args.output)
    for task in ("narratives", "roles"):
        reports: list[SplitReport] = []
        dsd = build_datasets(task, test_fraction=args.test_fraction, validation_fraction=args.validation_fraction, report=reports)
        dsd.save_to_disk(str(out / task))
        print(reports[0].format_table(), end="\n\n")
    print(f"saved to {out}/narratives and {out}/roles (load with datasets.load_from_disk)")
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
    from .data import parse_document, read_document, segment
    from .taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    text = read_document(args.file)
    cases = parse_document(text, source=args.file)
    for i, case in enumerate(cases, 1):
        tags = taxonomy.tag(case.keywords, text=f"{case.title}\n{case.claim}\n{case.debunk}")
        print(f"── case {i} (line {case.line}) ──")
        print(f"title:      {case.title}")
        for name in ("outlet", "published", "languages", "countries", "keywords", "issue"):
            value = getattr(case, name)
            print(f"{name + ':':<12}{', '.join(value) if isinstance(value, list) else value}")
        print(f"narratives: {', '.join(tags) or '-'}")
        print(f"claim:      {case.claim}")
        print(f"debunk:     {case.debunk or '-'}\n")
    print("── spans ──")
    for span in segment(text):
        print(f"{span.label:<7} [{span.start}:{span.end}] {span.text}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .training import train

    config = load_config(args.config, args.set)
    result = train(config, output_dir=args.output_dir, config_path=args.config)
    test = result.metrics["splits"].get("test", {})
    keys = ("macro_f1", "micro_f1", "samples_f1", "top1_hit", "accuracy", "ece")
    shown = ", ".join(f"{k}={test[k]:.3f}" for k in keys if isinstance(test.get(k), float))
    print(f"model written to {result.model_dir}\ntest: {shown}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training import METRICS_FILE, evaluate_dir

    metrics = evaluate_dir(args.model_dir, split=args.split)
    for split, res in metrics["splits"].items():
        if args.split and split != args.split:
            continue
        base = res.get("baseline", {})
        print(f"{split} (n={res['n']})            model   baseline")
        for key in ("macro_f1", "micro_f1", "samples_f1", "top1_hit", "accuracy", "ece"):
            if key in res:
                print(f"  {key:<20} {res[key]:>8.3f} {base.get(key, float('nan')):>10.3f}")
    print(f"metrics written to {Path(args.model_dir) / METRICS_FILE}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import load_model

    texts = [t for t in args.text if t != "-"]
    if not texts or "-" in args.text:
        stdin = sys.stdin.read()
        if stdin.strip():
            texts.append(stdin)
    if not texts:
        print("error: give a text to classify, as an argument or on standard input", file=sys.stderr)
        return 2
    model = load_model(args.model)
    preds = model.predict(texts, top_k=args.top_k)
    if args.json:
        for pred in preds:
            print(json.dumps({**pred.to_dict(), "model": model.model_id}, ensure_ascii=False))
    else:
        print("\n\n".join(str(p) for p in preds))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .predict import load_model
    from .scoring import score

    summary = score(
        args.inputs,
        args.output,
        model=load_model(args.model),
        fmt=args.format,
        text_field=args.text_field,
        id_field=args.id_field,
        input_format=args.input_format,
        resume=args.resume,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
    )
    print(summary.format_table(), file=sys.stderr)
    return 0


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from .datasets import corpus_texts
    from .models.tiny import build_tiny_encoder

    path = build_tiny_encoder(args.output_dir, texts=corpus_texts())
    print(f"tiny encoder written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="disinfo-clf", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build datasets, inspect case documents").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("build", help="write the narratives and roles datasets with save_to_disk")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.set_defaults(func=_cmd_data_build)
    p = data.add_parser("show", help="print the cases and spans the parser finds in a case document")
    p.add_argument("file")
    p.set_defaults(func=_cmd_data_show)

    p = sub.add_parser("train", help="train a narrative or role model from a YAML config")
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/linear.yaml")
    p.add_argument("--output-dir", help="model directory to write (overrides output_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. linear.C=4")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model directory on its time-split data")
    p.add_argument("model_dir")
    p.add_argument("--split", choices=["train", "validation", "test"], default=None, help="default: validation and test")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="tag text (arguments or standard input) with its narrative")
    p.add_argument("text", nargs="*", help="texts to classify; '-' or none reads standard input")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--top-k", type=int, default=None, help="keep only the k highest narrative scores")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("score", help="score news feeds (JSONL, CSV, RSS/Atom, folders of .txt/.html, '-')")
    p.add_argument("inputs", nargs="+", help="files, folders, or '-' for standard input")
    p.add_argument("-o", "--output", default=None, help="output file (default: standard output)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="output format")
    p.add_argument("--input-format", default=None, help="override input detection: jsonl, csv, tsv, feed, folder, html, text")
    p.add_argument("--text-field", help="JSONL/CSV field holding the text")
    p.add_argument("--id-field", help="JSONL/CSV field holding the record id")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run into the same output file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("build-tiny-encoder", help="build a tiny random encoder + tokenizer trained on our corpus (offline)")
    p.add_argument("output_dir")
    p.set_defaults(func=_cmd_build_tiny)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``disinfo-clf`` console script."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from .config import ConfigError
    from .feeds import InputError
    from .models.base import ModelDirectoryError
    from .scoring import ScoringError

    try:
        return int(args.func(args))
    except (ConfigError, ModelDirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except (ScoringError, InputError, OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
