"""The shipped real-text corpus (``resources/data/realtext/*.jsonl``): news, statements, posts and
fact-checks written by others, one record per line (format in that folder's README)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection

from ..resources import DATA_DIR

REALTEXT_DIR = DATA_DIR / "realtext"


def load_realtext(kinds: Collection[str] | None = None, splits: Collection[str] | None = None,
                  units: Collection[str] | None = None, directory: str | Path = REALTEXT_DIR) -> list[dict[str, Any]]:
    """Records of every source in ``directory``, sources in name order and records in file order,
    keeping those whose ``kind``, ``split`` and ``unit`` are among the ones given (``None``: any)."""
    out: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                keep = ((kinds is None or rec["kind"] in kinds) and (splits is None or rec["split"] in splits)
                        and (units is None or rec["unit"] in units))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}, line {number}: not a real-text record ({exc}); every line is a JSON "
                                 "object with kind, split, unit and text (see the folder's README)") from exc
            if keep:
                out.append(rec)
    return out


STANCE_ONLY_SOURCES = frozenset({"wiki_current_events"})
"""Sources whose train and dev splits only the stance gate reads (split by time when it was added): the
relevance flag and the war narratives' head were fitted and calibrated without them, and stay so."""
OTHER_TOPIC_SOURCES = frozenset({"factcheck_headlines"})
"""Sources whose claims and debunks are about other things than the narratives (Australian, Indian and
British fact-checks): they teach the role model, and are never narrative or relevance positives."""
