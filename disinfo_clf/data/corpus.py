"""The vendored EUvsDisinfo cases as one corpus: merged, de-duplicated, oldest first."""
from __future__ import annotations

import logging
from typing import Iterator

from ..text.vocabulary import normalise_key
from .cases import Case
from .exports import load_database_csv, load_review_csv

logger = logging.getLogger(__name__)


def load_all_cases(review_csv: str | None = None, database_csv: str | None = None) -> list[Case]:
    """Review and database cases merged, oldest first, de-duplicated on title and claim."""
    cases = load_review_csv(review_csv) + load_database_csv(database_csv)
    cases = [c for c in cases if c.published is not None and (c.claim or c.title).strip()]
    # Review cases carry the fuller claim text; stable sort puts them first on equal dates.
    cases.sort(key=lambda c: (c.published, 0 if c.debunk else 1))
    seen: set[str] = set()
    unique: list[Case] = []
    for case in cases:
        keys = {normalise_key(case.title), normalise_key(case.claim)} - {""}
        if keys & seen:
            continue
        seen |= keys
        unique.append(case)
    logger.info("merged %d cases into %d unique cases", len(cases), len(unique))
    return unique


def corpus_texts() -> Iterator[str]:
    """Distinct titles, claims and disproofs of the shipped EUvsDisinfo exports (for tokenizers)."""
    seen: set[str] = set()
    for case in [*load_review_csv(), *load_database_csv()]:
        for text in (case.title, case.claim, case.debunk):
            if text and text not in seen:
                seen.add(text)
                yield text
