"""Which catalogued cases a text repeats: :func:`match` embeds every sentence window of a text
with the index's encoder and returns the best cases across windows."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, overload

import numpy as np

from ..encoders.base import Encoder
from ..text.sentences import text_windows
from .index import CaseIndex, CaseMatch, encoder_for, load_index

__all__ = ["embed_windows", "match"]


def embed_windows(texts: Sequence[str], encoder: Encoder, *, prefix: str | None = None, batch_size: int = 64,
                  show_progress_bar: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every sentence window of ``texts`` (read with ``prefix``, else the encoder's
    ``query`` prompt), and the text each row belongs to."""
    windows = [text_windows(t) for t in texts]
    flat = [t[s:e] for t, ws in zip(texts, windows) for s, e in ws]
    owners = np.repeat(np.arange(len(texts)), [len(ws) for ws in windows])
    embeddings = encoder.embed(flat, prefix=prefix, batch_size=batch_size, show_progress_bar=show_progress_bar)
    return embeddings, owners


def _check_texts(texts: Sequence[Any]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str: pass text strings")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty: every text needs some non-blank characters")


@overload
def match(texts: str, k: int = ..., *, index: str | Path | CaseIndex | None = ..., encoder: Encoder | None = ...,
          batch_size: int = ..., show_progress_bar: bool | None = ...) -> list[CaseMatch]: ...
@overload
def match(texts: Sequence[str], k: int = ..., *, index: str | Path | CaseIndex | None = ...,
          encoder: Encoder | None = ..., batch_size: int = ..., show_progress_bar: bool | None = ...) -> list[list[CaseMatch]]: ...
def match(texts: str | Sequence[str], k: int = 5, *, index: str | Path | CaseIndex | None = None,
          encoder: Encoder | None = None, batch_size: int = 64,
          show_progress_bar: bool | None = None) -> list[CaseMatch] | list[list[CaseMatch]]:
    """The ``k`` catalogued cases closest to a text, best first; a list of texts gives one list per text.

    ``index`` is None (the shipped index of every vendored case), an index directory, or a
    :class:`CaseIndex`; ``encoder`` defaults to the one the index was built with.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)  # type: ignore[list-item]
    _check_texts(items)
    case_index = load_index(index)
    if not items:
        return []
    model = encoder_for(case_index, encoder)
    embeddings, owners = embed_windows(items, model, prefix=case_index.meta.prefix, batch_size=batch_size, show_progress_bar=show_progress_bar)
    results = case_index.search(embeddings, k, owners)
    return results[0] if single else results
