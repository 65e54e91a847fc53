"""Cases → Hugging Face datasets with time-aware splits.

Two tasks:

- ``narratives``: one row per case; ``text`` is the claim (review summary, else the database
  title) and never the debunk; ``labels`` are the taxonomy's narrative ids (multi-label).
- ``roles``: one row per sentence of the Disinfo Review, with the paragraph it stands in as
  ``context``; sentences of a summary are ``claim``, sentences of a disproof are ``debunk``.

Test is the most recent period of the data, validation the period just before it, train the
rest. Cases are de-duplicated on their normalised title and claim before splitting, so no case
and no repeated title lands in two splits.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Sequence

import datasets as hf

from ..data.cases import Case
from ..data.corpus import load_all_cases
from ..data.exports import load_review_csv
from ..text.sentences import split_sentences
from ..text.vocabulary import normalise_key
from ..taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

Task = Literal["narratives", "roles"]
SPLITS = ("train", "validation", "test")
ROLE_LABELS = ["claim", "debunk"]
_MIN_SENTENCE_CHARS = 20
_URL_ONLY = re.compile(r"^\W*(https?://|www\.|bit\.ly)\S*\W*$", re.I)


@dataclass
class SplitReport:
    """Where the time splits fall and what each holds."""

    task: str
    boundaries: dict[str, tuple[str, str]]
    sizes: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    unlabelled: dict[str, int] = field(default_factory=dict)

    def format_table(self) -> str:
        """A plain-text table for people: split, dates, size, and label counts."""
        labels = sorted({lab for counts in self.label_counts.values() for lab in counts})
        width = max([len(x) for x in labels] + [12])
        lines = [f"task: {self.task}"]
        lines.append(f"{'split':<12}{'from':<12}{'to':<12}{'rows':>8}")
        for split in SPLITS:
            lo, hi = self.boundaries.get(split, ("", ""))
            lines.append(f"{split:<12}{lo:<12}{hi:<12}{self.sizes.get(split, 0):>8}")
        lines.append("")
        lines.append(f"{'label':<{width}}" + "".join(f"{s:>12}" for s in SPLITS))
        for lab in labels:
            lines.append(f"{lab:<{width}}" + "".join(f"{self.label_counts.get(s, {}).get(lab, 0):>12}" for s in SPLITS))
        if self.unlabelled:
            lines.append(f"{'(no label)':<{width}}" + "".join(f"{self.unlabelled.get(s, 0):>12}" for s in SPLITS))
        return "\n".join(lines)


def time_boundaries(dates: Sequence[dt.date], test_fraction: float, validation_fraction: float) -> tuple[dt.date, dt.date]:
    """First date of validation and first date of test, so the newest cases are held out.

    A day is never split between two splits: the boundary moves to the start of that day.
    """
    if not 0 < test_fraction < 1 or not 0 < validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise ValueError(
            f"test_fraction={test_fraction} and validation_fraction={validation_fraction} must each "
            "be in (0, 1) and sum to less than 1"
        )
    ordered = sorted(dates)
    if len(ordered) < 3:
        raise ValueError(f"need at least 3 dated cases to split by time, got {len(ordered)}")
    n = len(ordered)
    test_start = ordered[min(n - 1, int(round(n * (1 - test_fraction))))]
    val_start = ordered[min(n - 1, int(round(n * (1 - test_fraction - validation_fraction))))]
    if val_start >= test_start:
        raise ValueError("the data covers too few distinct dates for a validation period before the test period")
    return val_start, test_start


def time_periods(dates: Sequence[dt.date], test_fraction: float = 0.15,
                 validation_fraction: float = 0.15) -> tuple[list[str], dt.date, dt.date]:
    """``"train"``, ``"validation"`` or ``"test"`` for each date as :func:`time_boundaries` splits them
    (by default the shipped models' 15% / 15%), with the first validation and first test dates."""
    val_start, test_start = time_boundaries(dates, test_fraction, validation_fraction)
    return [_split_of(d, val_start, test_start) for d in dates], val_start, test_start


def _split_of(date: dt.date, val_start: dt.date, test_start: dt.date) -> str:
    if date >= test_start:
        return "test"
    return "validation" if date >= val_start else "train"


def _boundaries(rows: dict[str, list[dict]]) -> dict[str, tuple[str, str]]:
    return {s: (min(r["date"] for r in rs), max(r["date"] for r in rs)) for s, rs in rows.items() if rs}


def _narrative_rows(cases: Sequence[Case], taxonomy: Taxonomy) -> list[dict]:
    rows = []
    for case in cases:
        text = (case.claim or case.title).strip()
        narratives = case.narratives or taxonomy.tag(case.keywords, text=text)
        rows.append(
            {
                "id": case.id,
                "text": text,
                "labels": narratives,
                "language": case.languages[0] if case.languages else "",
                "date": case.published.isoformat() if case.published else "",
                "keywords": list(case.keywords),
                "source": case.source or "",
            }
        )
    return rows


def _role_rows(cases: Sequence[Case]) -> list[dict]:
    rows: list[dict] = []
    label_of: dict[str, set[str]] = {}
    for case in cases:
        for label, body in (("claim", case.claim), ("debunk", case.debunk)):
            for paragraph in (p.strip() for p in body.splitlines()):
                for start, end in split_sentences(paragraph):
                    sentence = paragraph[start:end]
                    if len(sentence) < _MIN_SENTENCE_CHARS or _URL_ONLY.match(sentence):
                        continue
                    key = normalise_key(sentence)
                    label_of.setdefault(key, set()).add(label)
                    rows.append({"id": case.id, "text": sentence, "context": paragraph, "label": label, "key": key,
                                 "date": case.published.isoformat() if case.published else ""})
    # A sentence seen under both labels is ambiguous; a repeated sentence is kept once.
    kept, seen = [], set()
    for row in rows:
        key = row.pop("key")
        if len(label_of[key]) > 1 or key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept


def build_datasets(
    task: Task = "narratives",
    *,
    cases: Sequence[Case] | None = None,
    taxonomy: Taxonomy | None = None,
    review_csv: str | None = None,
    database_csv: str | None = None,
    test_fraction: float = 0.15,
    validation_fraction: float = 0.15,
    max_cases: int | None = None,
    report: list[SplitReport] | None = None,
) -> hf.DatasetDict:
    """Build the ``narratives`` or ``roles`` dataset with time-aware train/validation/test splits.

    ``cases`` defaults to the shipped EUvsDisinfo exports (review cases only for ``roles``, since
    only they carry debunk text). Pass a list to ``report`` to receive a :class:`SplitReport`.
    """
    if task not in ("narratives", "roles"):
        raise ValueError(f"unknown task {task!r}: use 'narratives' or 'roles'")
    taxonomy = taxonomy or load_taxonomy()
    if cases is None:
        cases = load_all_cases(review_csv, database_csv) if task == "narratives" else load_review_csv(review_csv)
    cases = [c for c in cases if c.published is not None]
    if task == "roles":
        cases = [c for c in cases if c.debunk.strip() and c.claim.strip()]
    if max_cases and len(cases) > max_cases:
        ordered = sorted(cases, key=lambda c: c.published)
        step = len(ordered) / max_cases
        cases = [ordered[int(i * step)] for i in range(max_cases)]
    val_start, test_start = time_boundaries([c.published for c in cases], test_fraction, validation_fraction)

    rows = _narrative_rows(cases, taxonomy) if task == "narratives" else _role_rows(cases)
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for row in rows:
        by_split[_split_of(dt.date.fromisoformat(row["date"]), val_start, test_start)].append(row)

    if task == "narratives":
        features = hf.Features(
            {
                "id": hf.Value("string"),
                "text": hf.Value("string"),
                "labels": hf.Sequence(hf.ClassLabel(names=taxonomy.ids)),
                "language": hf.Value("string"),
                "date": hf.Value("string"),
                "keywords": hf.Sequence(hf.Value("string")),
                "source": hf.Value("string"),
            }
        )
        counts = {s: dict(Counter(lab for r in rs for lab in r["labels"])) for s, rs in by_split.items()}
        unlabelled = {s: sum(1 for r in rs if not r["labels"]) for s, rs in by_split.items()}
    else:
        features = hf.Features(
            {
                "id": hf.Value("string"),
                "text": hf.Value("string"),
                "context": hf.Value("string"),
                "label": hf.ClassLabel(names=ROLE_LABELS),
                "date": hf.Value("string"),
            }
        )
        counts = {s: dict(Counter(r["label"] for r in rs)) for s, rs in by_split.items()}
        unlabelled = {}
    result = hf.DatasetDict({s: hf.Dataset.from_list(rs, features=features) for s, rs in by_split.items()})
    split_report = SplitReport(
        task=task,
        boundaries=_boundaries(by_split),
        sizes={s: len(rs) for s, rs in by_split.items()},
        label_counts=counts,
        unlabelled=unlabelled,
    )
    logger.info("built %s dataset:\n%s", task, split_report.format_table())
    if report is not None:
        report.append(split_report)
    return result
