"""Sample the English source texts of the translated development and test sets.

Usage: ``python scripts/make_translation_sample.py [--output-dir DIR] [--relabel] [--force]``

Writes ``sample_dev.jsonl`` and ``sample_test.jsonl`` (default directory
``disinfo_clf/resources/data/multilingual/``), one English source text per line:
``{"id", "case_id", "url", "date", "narratives", "role", "en"}``.

- ``claim`` items are cases of the narrative dataset, split by time exactly as
  ``configs/linear.yaml`` splits it: dev from the validation period, test from the test period.
  The sample is stratified so every narrative occurring in the period has at least two cases
  (where the period has two), then filled at random from the rest of the period.
- ``debunk`` items are debunk sentences of the role dataset, split as ``configs/role-linear.yaml``
  splits it (dev: validation period, test: test period), kept only when they read as a
  refutation on their own (no link, no connective or pronoun pointing back to a previous
  sentence, a refutation cue), at most one per case.

The sample is deterministic (fixed seed, inputs sorted before shuffling) for a given taxonomy:
the narrative labels steer the stratification. The translations of these texts
(``claims_dev.jsonl``, ``claims_test.jsonl``) were written by hand from these files (see
``disinfo_clf/resources/data/PROVENANCE.md``), so the script refuses to overwrite a sample that
has translations with a different draw; after a taxonomy change run it with ``--relabel``, which
keeps the items and refreshes only their ``narratives``.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from disinfo_clf.config import DataConfig, load_config
from disinfo_clf.data.exports import load_review_csv
from disinfo_clf.text.sentences import split_sentences
from disinfo_clf.training.datasets import build_datasets
from disinfo_clf.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger("make_translation_sample")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "disinfo_clf" / "resources" / "data" / "multilingual"
NARRATIVE_CONFIG = ROOT / "configs" / "linear.yaml"
ROLE_CONFIG = ROOT / "configs" / "role-linear.yaml"
SEED = 20240607
SIZES = {"dev": {"claim": 50, "debunk": 25}, "test": {"claim": 100, "debunk": 40}}
PERIOD = {"dev": "validation", "test": "test"}
MIN_PER_NARRATIVE = 2
MAX_CHARS = 300
MAX_SENTENCES = 2
NEAR_DUPLICATE = 0.7  # word-set Jaccard above which a text counts as a repeat of one already chosen

_LINK = re.compile(r"https?://|www\.|bit\.ly|\.ly/|//")
# Openings that lean on a previous sentence, so the sentence does not stand on its own.
_BACK_REFERENCE = re.compile(
    r"^(moreover|furthermore|further|also|similarly|however|but|and|or|so|in addition|additionally|"
    r"this|these|that|those|it|its|they|their|he|his|she|her|such|besides|instead|yet|then|thus|"
    r"hence|therefore|meanwhile|again|as|here|there he|there she|both|neither|nor|likewise|on the contrary|"
    r"in this|in that|at the same time|for example|for instance|see|read|more|repeating|recurring|"
    r"the same|another|other|similar|one of|which|who|where|when|while|if|although|though|even|selfevidently)\b",
    re.I,
)
# Words by which a debunk sentence states a refutation or a contrary fact.
_REFUTATION = re.compile(
    r"\b(no evidence|not true|untrue|false|falsely|fake|fabricat\w*|there (is|are|was|were|has been|have been) no|"
    r"never|not|n't|no|none|nothing|disinformation|myth|conspiracy|unfounded|baseless|groundless|"
    r"in fact|in reality|contrary|denied|refuted|debunked|without|lie|lies|misleading|manipulat\w*|"
    r"distort\w*|invented|proof|evidence)\b",
    re.I,
)
# Editorial notes about the review itself (translations of an article, pointers to other issues).
_EDITORIAL = re.compile(
    r"\b(translation (of|to|into)|mentioned above|above|below|in question|see e\.?g|issue \d+|issues? of the|"
    r"disinfo(rmation)? review|previously|this article|the department|said the following)\b",
    re.I,
)
# A bare verdict with no content of its own ("No evidence given for the claims."); some are
# kept, since many debunks read like that, but they may not dominate the sample.
_GENERIC = re.compile(
    r"^(no evidence|no proof|re-?occ?ur+ing|often repeated|groundless|conspiracy theory|unfounded|illogical|"
    r"a (very )?common|an often|recurring|repeated)\b",
    re.I,
)
GENERIC_SHARE = 0.2
MIN_WORDS = 7


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _is_repeat(text: str, chosen: Sequence[str]) -> bool:
    words = _words(text)
    for other in chosen:
        theirs = _words(other)
        if words and theirs and len(words & theirs) / len(words | theirs) > NEAR_DUPLICATE:
            return True
    return False


def _short_enough(text: str) -> bool:
    return len(text) <= MAX_CHARS and len(split_sentences(text)) <= MAX_SENTENCES


def _shuffled(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    ordered = sorted(rows, key=lambda r: (r["date"], r["id"], r["text"]))
    rng.shuffle(ordered)
    return ordered


def _datasets(task: str, data: DataConfig, taxonomy: Taxonomy) -> Any:
    return build_datasets(
        task,  # type: ignore[arg-type]
        taxonomy=taxonomy,
        review_csv=data.review_csv,
        database_csv=data.database_csv,
        test_fraction=data.test_fraction,
        validation_fraction=data.validation_fraction,
        max_cases=data.max_cases,
    )


def sample_claims(rows: list[dict[str, Any]], size: int, labels: Sequence[str], rng: random.Random) -> list[dict[str, Any]]:
    """``size`` short cases: first two per narrative (rarest narrative first), then at random."""
    pool = _shuffled([r for r in rows if _short_enough(r["text"])], rng)
    chosen: list[dict[str, Any]] = []
    taken: set[int] = set()

    def take(i: int) -> bool:
        if i in taken or _is_repeat(pool[i]["text"], [c["text"] for c in chosen]):
            return False
        taken.add(i)
        chosen.append(pool[i])
        return True

    frequency = Counter(lab for r in pool for lab in r["labels"])
    for label in sorted(frequency, key=lambda lab: (frequency[lab], labels[lab])):
        have = sum(1 for c in chosen if label in c["labels"])
        for i, row in enumerate(pool):
            if have >= MIN_PER_NARRATIVE or len(chosen) >= size:
                break
            if label in row["labels"] and take(i):
                have += 1
    for i in range(len(pool)):
        if len(chosen) >= size:
            break
        take(i)
    if len(chosen) < size:
        raise ValueError(f"the period holds only {len(chosen)} distinct short cases; asked for {size}")
    return sorted(chosen, key=lambda r: (r["date"], r["id"]))


def reads_as_refutation(sentence: str) -> bool:
    """Whether a debunk sentence states a refutation that can be read without its paragraph."""
    text = sentence.strip()
    return (
        40 <= len(text) <= MAX_CHARS
        and text[0].isupper()
        and text[-1] in ".!?\"”"
        and not _LINK.search(text)
        and len(text.split()) >= MIN_WORDS
        and not _BACK_REFERENCE.match(text)
        and not _EDITORIAL.search(text)
        and _REFUTATION.search(text) is not None
        and text.count("\"") % 2 == 0
        and text.count("“") == text.count("”")
    )


def sample_debunks(rows: list[dict[str, Any]], size: int, rng: random.Random) -> list[dict[str, Any]]:
    """``size`` stand-alone debunk sentences, at most one per case."""
    pool = _shuffled([r for r in rows if r["label"] == "debunk" and reads_as_refutation(r["text"])], rng)
    chosen: list[dict[str, Any]] = []
    cases: set[str] = set()
    generic_left = int(size * GENERIC_SHARE)
    for row in pool:
        if len(chosen) >= size:
            break
        if row["id"] in cases or _is_repeat(row["text"], [c["text"] for c in chosen]):
            continue
        if _GENERIC.match(row["text"]):
            if generic_left == 0:
                continue
            generic_left -= 1
        cases.add(row["id"])
        chosen.append(row)
    if len(chosen) < size:
        raise ValueError(f"the period holds only {len(chosen)} usable debunk sentences; asked for {size}")
    return sorted(chosen, key=lambda r: (r["date"], r["id"], r["text"]))


def _context() -> tuple[Taxonomy, Any, Any, dict[str, Any]]:
    """The taxonomy, the narrative and role datasets (split as their configs split them), review cases by id."""
    narrative_config = load_config(NARRATIVE_CONFIG)
    role_config = load_config(ROLE_CONFIG)
    taxonomy = load_taxonomy(narrative_config.data.taxonomy)
    narratives = _datasets("narratives", narrative_config.data, taxonomy)
    roles = _datasets("roles", role_config.data, taxonomy)
    review = {c.id: c for c in load_review_csv(role_config.data.review_csv)}
    return taxonomy, narratives, roles, review


def _debunk_narratives(case: Any, taxonomy: Taxonomy) -> list[str]:
    return sorted(case.narratives or taxonomy.tag(case.keywords, text=(case.claim or case.title).strip()))


def build_samples(seed: int = SEED) -> dict[str, list[dict[str, Any]]]:
    """The dev and test samples, as the JSON lines to write."""
    taxonomy, narratives, roles, review = _context()
    labels = taxonomy.ids
    role_names = roles["train"].features["label"].names
    out: dict[str, list[dict[str, Any]]] = {}
    for split, period in PERIOD.items():
        rng = random.Random(f"{seed}-{split}")
        claim_rows = [dict(r) for r in narratives[period]]
        role_rows = [{**r, "label": role_names[r["label"]]} for r in roles[period]]
        claims = sample_claims(claim_rows, SIZES[split]["claim"], labels, rng)
        debunks = sample_debunks(role_rows, SIZES[split]["debunk"], rng)
        lines: list[dict[str, Any]] = []
        for row in claims:
            lines.append({"case_id": row["id"], "url": row["id"] if row["id"].startswith("http") else None,
                          "date": row["date"], "narratives": sorted(labels[k] for k in row["labels"]),
                          "role": "claim", "en": row["text"]})
        for row in debunks:
            case = review[row["id"]]
            lines.append({"case_id": row["id"], "url": case.url, "date": row["date"],
                          "narratives": _debunk_narratives(case, taxonomy), "role": "debunk", "en": row["text"]})
        out[split] = [{"id": f"{split}-{n:03d}", **line} for n, line in enumerate(lines, 1)]
        logger.info("%s: %d claims from the %s period, %d debunk sentences", split, len(claims), period, len(debunks))
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    logger.info("wrote %s (%d lines)", path, len(lines))


def relabel(directory: Path) -> None:
    """Refresh the ``narratives`` of the existing sample and translated files from the current
    taxonomy, keeping the drawn items (the translations belong to them)."""
    taxonomy, narratives, _, review = _context()
    labels = taxonomy.ids
    claim_labels = {case_id: sorted(labels[k] for k in labs)
                    for ds in narratives.values() for case_id, labs in zip(ds["id"], ds["labels"])}
    for split in PERIOD:
        for path in (directory / f"sample_{split}.jsonl", directory / f"claims_{split}.jsonl"):
            if not path.exists():
                continue
            lines = _read(path)
            for line in lines:
                line["narratives"] = (claim_labels[line["case_id"]] if line["role"] == "claim"
                                      else _debunk_narratives(review[line["case_id"]], taxonomy))
            _write(path, lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--relabel", action="store_true",
                        help="only refresh the narratives of the existing files from the current taxonomy")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a sample whose translations (claims_<split>.jsonl) exist and differ")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.relabel:
        relabel(args.output_dir)
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split, lines in build_samples(args.seed).items():
        path = args.output_dir / f"sample_{split}.jsonl"
        translated = args.output_dir / f"claims_{split}.jsonl"
        if translated.exists() and path.exists() and _read(path) != lines and not args.force:
            logger.error("%s: the new draw differs from the sample that %s translates; keep it (use --relabel "
                         "after a taxonomy change) or pass --force and translate the new sample", path, translated.name)
            return 1
        _write(path, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
