"""The ordinary bank of scripts/train_relevance.py: which pool windows it holds, and their features with the
bank rows a window must not see (its own text, its source, the held-out fold) hidden."""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from disinfo_clf.matching.ordinary_bank import ordinary_features
from disinfo_clf.matching.relevance import RelevanceModel

Texts = Any
"""train_relevance.Texts (not imported: that script imports this module)."""


def ordinary_bank(pool: Texts, which: str) -> tuple[np.ndarray, np.ndarray]:
    """The bank's window rows in the pool (``real``: real-text ordinary; ``real+llm``: also ordinary.jsonl)."""
    _, _, owners, labels = pool.arrays()
    kinds = ("/real-",) if which == "real" else ("/real-", "/ordinary-")
    keep = np.array([labels[o] == 0 and any(k in pool.tags[o] for k in kinds) for o in owners.tolist()])
    return np.where(keep)[0], owners


def source_of(tag: str) -> str:
    """The source of a pool text from its tag: ``real-<source>`` for real text, ``ordinary`` for ordinary.jsonl/extra."""
    kind = tag.split("/", 1)[1]
    return "-".join(kind.split("-")[:2]) if kind.startswith("real-") else kind.split("-")[0]


def pool_with_bank(pool: Texts, rows: np.ndarray, owners: np.ndarray, folds: np.ndarray, held: int | None,
                   by: str = "item") -> np.ndarray:
    """Pool window features plus the ordinary-bank ones; a window never sees the bank rows of its own fold key
    (``by="item"``: its text and translations) or of its whole source (``by="source"``, as text from an unseen
    source would; ``by="mixed"``: either, half the texts each), nor (``held`` = a fold) the held fold's."""
    X, emb, _, _ = pool.arrays()
    if by == "mixed":  # half the texts (by a hash of their fold key) see the bank as an unseen source would
        keys = [source_of(t) if zlib.crc32(k.encode()) % 2 else k for k, t in zip(pool.folds, pool.tags)]
    else:
        keys = pool.folds if by == "item" else [source_of(t) for t in pool.tags]
    codes = {key: i for i, key in enumerate(sorted(set(keys)))}
    text_code = np.array([codes[k] for k in keys])
    exclude = text_code[owners][:, None] == text_code[owners[rows]][None, :]
    if held is not None:
        exclude |= (folds[owners[rows]] == held)[None, :]
    return np.column_stack([X, ordinary_features(X[:, 0], emb, emb[rows], exclude=exclude)])


def unseen_source(model: RelevanceModel, texts: Texts, pool: Texts, rows: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Window features of ``texts`` with the bank rows of their own source hidden: how the flag would do on
    text from a source it never saw (a development measure; realtext dev sources have train rows in the bank)."""
    X, emb, text_owners, _ = texts.arrays()
    bank_source = np.array([source_of(pool.tags[o]) for o in owners[rows].tolist()])
    text_source = np.array([source_of(t) for t in texts.tags])
    exclude = text_source[text_owners][:, None] == bank_source[None, :]
    return np.column_stack([X, ordinary_features(X[:, 0], emb, model.ordinary, exclude=exclude)])
