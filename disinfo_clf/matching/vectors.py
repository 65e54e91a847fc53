"""Nearest neighbours by inner product: exact (numpy, in blocks) or approximate (a faiss IVF index).

Vectors are L2-normalised, so the inner product is the cosine similarity. faiss is optional
(``pip install 'disinfo-clf[index]'``) and imported only when an approximate search is asked for.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024 * 1024
"""Most bytes of one block of the similarity matrix in an exact search."""


ROWS_PER_PRODUCT = 16
"""Queries per matrix product, padded to exactly this many: a product's rounding depends on its
shape, so every query goes through one of the same shape, whatever it is batched with."""


def similarities(queries: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """``queries @ embeddings.T``, each row the same bits whatever other queries come with it."""
    queries = np.asarray(queries)
    out = np.empty((len(queries), len(embeddings)), dtype=np.result_type(queries, embeddings))
    block = np.zeros((ROWS_PER_PRODUCT, queries.shape[1] if queries.ndim == 2 else 0), dtype=queries.dtype)
    for start in range(0, len(queries), ROWS_PER_PRODUCT):
        part = queries[start:start + ROWS_PER_PRODUCT]
        block[:len(part)] = part
        block[len(part):] = 0
        out[start:start + len(part)] = (block @ embeddings.T)[:len(part)]
    return out


def exact_topk(queries: np.ndarray, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Similarities and row positions of the ``k`` rows of ``embeddings`` closest to each query, best first."""
    n, total = len(queries), len(embeddings)
    scores = np.empty((n, k), dtype=np.float32)
    positions = np.empty((n, k), dtype=np.int64)
    rows = max(ROWS_PER_PRODUCT, _CHUNK_BYTES // (4 * max(total, 1)) // ROWS_PER_PRODUCT * ROWS_PER_PRODUCT)
    for start in range(0, n, rows):
        sims = similarities(queries[start:start + rows], embeddings)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < total else np.tile(np.arange(total), (len(sims), 1))
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores[start:start + rows] = np.take_along_axis(top_scores, order, axis=1)
        positions[start:start + rows] = np.take_along_axis(top, order, axis=1)
    return scores, positions


def import_faiss() -> Any:
    """The faiss module, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("searching a large case index needs faiss: pip install 'disinfo-clf[index]' "
                          "(or faiss-cpu), or pass backend='exact'") from exc
    return faiss


def train_ivf(embeddings: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inverted-file layout of ``embeddings``: k-means centroids (about 4 sqrt(n)) and each row's list."""
    faiss = import_faiss()
    n, dim = embeddings.shape
    nlist = max(1, min(n // 39, int(4 * np.sqrt(n))))
    sample = embeddings
    if n > nlist * 64:
        sample = embeddings[np.random.default_rng(seed).choice(n, nlist * 64, replace=False)]
    kmeans = faiss.Kmeans(dim, nlist, niter=10, spherical=True, seed=seed, verbose=False)
    kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
    _, assign = kmeans.index.search(np.ascontiguousarray(embeddings, dtype=np.float32), 1)
    logger.info("clustered %d cases into %d inverted lists", n, nlist)
    return kmeans.centroids.astype(np.float32), assign[:, 0].astype(np.int32)


def ivf_index(embeddings: np.ndarray, centroids: np.ndarray, assign: np.ndarray) -> Any:
    """A faiss inverted-file index (inner product) of ``embeddings`` with a known layout: no clustering."""
    faiss = import_faiss()
    from faiss.contrib.ivf_tools import add_preassigned

    dim, assign = embeddings.shape[1], np.asarray(assign)
    if (centroids.ndim != 2 or centroids.shape[1] != dim or assign.shape != (len(embeddings),)
            or (len(assign) and (int(assign.min()) < 0 or int(assign.max()) >= len(centroids)))):
        raise ValueError(f"the inverted-file layout does not fit the {embeddings.shape} embeddings (centroids "
                         f"{centroids.shape}, {assign.shape} list numbers): rebuild the index")
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index = faiss.IndexIVFFlat(quantizer, dim, len(centroids), faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    add_preassigned(index, np.ascontiguousarray(embeddings, dtype=np.float32), np.asarray(assign, dtype=np.int64))
    return index
