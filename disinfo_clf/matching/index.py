"""Known-case matching: which catalogued cases is a text closest to?

A :class:`CaseIndex` holds one embedding per case (the catalogued claim read by the
multilingual e5 encoder with its ``query`` prompt, L2-normalised) and the case's metadata.
:func:`match` embeds every sentence window of a text, scores each case by its best window's
cosine similarity and returns the ``k`` closest cases, best first, as :class:`CaseMatch`
records. The encoder is multilingual, so a Russian post finds the English case.

Cases whose claims are the same words (after lower-casing and dropping punctuation) count once
in a result: the best-scored of them is shown. Near-repeats in other words stay, since each is
its own case with its own debunk.

An index directory holds ``embeddings.safetensors`` (``embeddings``: count x dim, fp16 or fp32;
for large indices also ``ivf_centroids`` and ``ivf_assign``, an inverted-file layout for
faiss), ``cases.json`` (one object per case) and ``index.json`` (format version, count, dim,
encoder name and weights fingerprint, prefix, sha256 of the data). The package ships one built
from every vendored case (``scripts/build_index.py``); users build their own with
:func:`build_index` or ``disinfo-clf index build``. Up to :data:`ANN_THRESHOLD` cases the
search is exact (one matrix product); above it, with the optional ``faiss-cpu``, an IVF index.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from .casefile import IndexedCase, data_sha256, load_case_file, texts_sha256, vendored_cases
from ..text.vocabulary import normalise_key
from ..resources import RESOURCES
from .index_checks import check_cases, check_float_matrix, check_ivf
from .vectors import exact_topk, import_faiss, ivf_index, train_ivf
from ..encoders.inference import shared_encoder
from ..encoders import E5_SMALL

if TYPE_CHECKING:
    from ..encoders.base import Encoder

logger = logging.getLogger(__name__)

INDEX_DIR = RESOURCES / "index"
"""The shipped index of every vendored case."""
FORMAT_VERSION = 1
EMBEDDINGS_FILE = "embeddings.safetensors"
CASES_FILE = "cases.json"
META_FILE = "index.json"
ANN_THRESHOLD = 200_000
"""From this many cases on, ``backend="auto"`` searches with faiss (when installed)."""
Backend = Literal["auto", "exact", "faiss"]

__all__ = ["CaseIndex", "CaseIndexError", "CaseMatch", "IndexMeta", "build_index", "load_index"]


class CaseIndexError(ValueError):
    """An index directory that cannot be used (missing, corrupt, or built with another encoder); names it."""


@dataclass(frozen=True)
class CaseMatch:
    """A catalogued case close to a text."""

    id: str
    """The case's id in its index (the case page URL for EUvsDisinfo database cases)."""
    url: str | None
    """The case page, ``None`` where the source has none."""
    title: str
    claim: str
    """The catalogued claim text."""
    date: str | None
    """ISO date of the case, ``None`` when unknown."""
    narratives: tuple[str, ...]
    """Narrative ids the case carries."""
    score: float
    """Cosine similarity of the case's claim to the text's closest window (higher is closer;
    exact repeats score about 1, texts on unrelated topics about 0.7 with this encoder)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = dataclasses.asdict(self)
        out["narratives"] = list(self.narratives)
        return out


@dataclass(frozen=True)
class IndexMeta:
    """What ``index.json`` records about an index."""

    count: int
    dim: int
    encoder: str
    """The encoder's Hub id or directory, handed to :func:`disinfo_clf.encoders.load_encoder`."""
    encoder_fingerprint: str
    """sha256 of the encoder weights the embeddings were computed with."""
    data_sha256: str
    """sha256 of the cases (ids, texts, dates, narratives): tells a stale index from a current one."""
    texts_sha256: str
    """sha256 of the embedded texts alone: the embeddings are reusable while it is unchanged."""
    prefix: str = "query: "
    """The prefix every case was embedded with (the encoder's ``query`` prompt); texts searched
    against the index are read with it too. Indexes written before it was recorded used E5's."""
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)


class CaseIndex:
    """Embeddings and metadata of catalogued cases, searchable by similarity."""

    def __init__(self, cases: Sequence[IndexedCase], embeddings: np.ndarray, meta: IndexMeta,
                 ivf: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(cases):
            raise CaseIndexError(f"the index has {len(cases)} cases but embeddings of shape {embeddings.shape}")
        self.cases = list(cases)
        self.embeddings = embeddings
        self.meta = meta
        self.ivf = ivf
        """``(centroids, assignment)`` of a saved inverted-file layout, or ``None``."""
        self.nprobe: int | None = None
        """Inverted lists a faiss search visits (more: closer to exact, slower); ``None``: a 16th of
        the lists, at least 32 (on a million e5-like vectors: recall@10 0.98, 10 ms a query; scripts/bench_index.py)."""
        keys: dict[str, int] = {}
        self._groups = np.array([keys.setdefault(normalise_key(c.claim) or c.id, i) for i, c in enumerate(cases)],
                                dtype=np.int64)
        sizes = np.bincount(self._groups, minlength=1) if len(cases) else np.ones(1, dtype=np.int64)
        self._max_group = int(sizes.max())
        self._faiss: Any = None
        self._centroid: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def centroid(self) -> np.ndarray:
        """The mean of the case embeddings (not normalised): what "cases in general" look like."""
        if self._centroid is None:
            self._centroid = self.embeddings.mean(axis=0) if len(self) else np.zeros(self.meta.dim, np.float32)
        return self._centroid

    def __repr__(self) -> str:
        return f"CaseIndex({len(self)} cases, dim {self.meta.dim}, encoder {self.meta.encoder!r})"

    # -- building and files -------------------------------------------------------------------

    @classmethod
    def build(cls, cases: Sequence[IndexedCase], encoder: Encoder, *, encoder_name: str | None = None,
              batch_size: int = 64, show_progress_bar: bool | None = None,
              embeddings: np.ndarray | None = None) -> CaseIndex:
        """Embed ``cases`` with ``encoder`` (or take their precomputed ``embeddings``) into an index."""
        if not cases:
            raise CaseIndexError("no cases to index: pass at least one case")
        ids = [c.id for c in cases]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise CaseIndexError(f"case id {dup!r} occurs more than once: every case needs its own id")
        prefix = encoder.prompt()
        if embeddings is None:
            embeddings = encoder.embed([c.claim for c in cases], prefix=prefix, batch_size=batch_size,
                                       show_progress_bar=show_progress_bar)
        meta = IndexMeta(count=len(cases), dim=int(embeddings.shape[1]), prefix=prefix,
                         encoder=encoder_name or str(getattr(encoder, "name_or_path", "")),
                         encoder_fingerprint=str(getattr(encoder, "fingerprint", "")),
                         data_sha256=data_sha256(cases), texts_sha256=texts_sha256(cases))
        return cls(cases, embeddings, meta)

    def subset(self, keep: Sequence[bool] | np.ndarray) -> CaseIndex:
        """A new index of the cases where ``keep`` is true (for evaluations that hide some cases)."""
        mask = np.asarray(keep, dtype=bool)
        cases = [c for c, k in zip(self.cases, mask) if k]
        meta = dataclasses.replace(self.meta, count=len(cases), data_sha256=data_sha256(cases),
                                   texts_sha256=texts_sha256(cases))
        return CaseIndex(cases, self.embeddings[mask], meta)

    def save(self, directory: str | Path, *, dtype: Literal["float16", "float32"] = "float16",
             ivf: bool | None = None) -> Path:
        """Write the index to ``directory``; ``ivf`` (default: from :data:`ANN_THRESHOLD` cases on)
        also stores an inverted-file layout so that faiss loads it without re-clustering."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"embeddings": self.embeddings.astype(dtype)}
        if ivf if ivf is not None else len(self) >= ANN_THRESHOLD:
            centroids, assign = self.ivf or train_ivf(self.embeddings)
            tensors.update(ivf_centroids=centroids, ivf_assign=assign)
        save_file(tensors, str(directory / EMBEDDINGS_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        with open(directory / CASES_FILE, "w", encoding="utf-8") as stream:
            stream.write("[\n" + ",\n".join(json.dumps(c.to_json(), ensure_ascii=False) for c in self.cases) + "\n]\n")
        (directory / META_FILE).write_text(json.dumps(self.meta.to_dict(), indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s: %d cases", directory, len(self))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CaseIndex:
        """Read an index directory written by :meth:`save`, naming the file at fault on any problem."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise CaseIndexError(f"index directory {directory} does not exist: build one with "
                                 "`disinfo-clf index build CASES.csv -o DIR`")
        meta_path, cases_path, emb_path = directory / META_FILE, directory / CASES_FILE, directory / EMBEDDINGS_FILE
        for path in (meta_path, cases_path, emb_path):
            if not path.is_file():
                raise CaseIndexError(f"{path} is missing: {directory} is not a complete index directory; rebuild it "
                                     "with `disinfo-clf index build`")
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
            if raw.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format version {raw.get('format_version')!r}, this library reads {FORMAT_VERSION}")
            meta = IndexMeta(**raw)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CaseIndexError(f"{meta_path} is not an index description this library reads ({exc}); rebuild "
                                 "the index with `disinfo-clf index build`") from exc
        try:
            items = json.loads(cases_path.read_text(encoding="utf-8"))
            cases = [IndexedCase.from_json(item) for item in items]
        except (ValueError, TypeError, KeyError) as exc:
            raise CaseIndexError(f"{cases_path} is corrupt ({exc}); rebuild the index") from exc
        try:
            tensors = load_file(str(emb_path))
        except (SafetensorError, OSError) as exc:
            raise CaseIndexError(f"{emb_path} is not a readable safetensors file ({exc}); rebuild the index") from exc
        try:
            check_cases(cases, meta.data_sha256, meta.count, cases_path)
            embeddings = check_float_matrix(tensors.get("embeddings"), (meta.count, meta.dim), emb_path, "embeddings")
            ivf = None
            if "ivf_centroids" in tensors or "ivf_assign" in tensors:
                ivf = check_ivf(tensors.get("ivf_centroids"), tensors.get("ivf_assign", np.empty(0, np.int64)),
                                meta.count, meta.dim, emb_path)
        except ValueError as exc:
            raise CaseIndexError(str(exc)) from exc
        return cls(cases, embeddings, meta, ivf=ivf)

    def check(self, encoder: Encoder) -> None:
        """Refuse an encoder other than the one the index was built with (a clear CaseIndexError)."""
        fingerprint = str(getattr(encoder, "fingerprint", ""))
        dim = getattr(encoder, "dim", self.meta.dim)
        if dim != self.meta.dim or (self.meta.encoder_fingerprint and fingerprint != self.meta.encoder_fingerprint):
            raise CaseIndexError(
                f"this index was built with encoder {self.meta.encoder!r} (weights {self.meta.encoder_fingerprint[:12]}…, "
                f"dim {self.meta.dim}), but the encoder in use is {getattr(encoder, 'name_or_path', '?')!r} "
                f"(weights {fingerprint[:12]}…, dim {dim}): its similarities would mean nothing. Use the index's "
                "encoder, or rebuild the index with this one (`disinfo-clf index build`, scripts/build_index.py)"
            )

    # -- searching ----------------------------------------------------------------------------

    def neighbours(self, queries: np.ndarray, k: int, *, backend: Backend = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Similarities and case positions of the ``k`` closest cases of each query row, best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.meta.dim:
            raise ValueError(f"queries must have shape (n, {self.meta.dim}), got {queries.shape}")
        k = min(k, len(self))
        if self._use_faiss(backend):
            return self._faiss_index().search(queries, k)
        return exact_topk(queries, self.embeddings, k)

    def _use_faiss(self, backend: Backend) -> bool:
        if backend not in ("auto", "exact", "faiss"):
            raise ValueError(f"unknown backend {backend!r}: use 'auto', 'exact' or 'faiss'")
        if backend == "exact" or (backend == "auto" and len(self) < ANN_THRESHOLD):
            return False
        if backend == "auto":
            try:
                import_faiss()
            except ImportError:
                logger.warning("searching %d cases exactly; `pip install 'disinfo-clf[index]'` (faiss-cpu) makes "
                               "large indices fast", len(self))
                return False
        return True

    def _faiss_index(self) -> Any:
        if self._faiss is None:
            self.ivf = self.ivf or train_ivf(self.embeddings)
            self._faiss = ivf_index(self.embeddings, *self.ivf)
        self._faiss.nprobe = self.nprobe or max(32, self._faiss.nlist // 16)
        return self._faiss

    def fetch_size(self, k: int) -> int:
        """How many neighbours per row :meth:`search` needs for ``k`` results (repeats count once)."""
        return min(len(self), k * self._max_group)

    def search(self, queries: np.ndarray, k: int = 5, owners: Sequence[int] | np.ndarray | None = None,
               *, backend: Backend = "auto",
               neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[CaseMatch]]:
        """The ``k`` best cases per text, from query embeddings; ``owners[i]`` is the text of row ``i``
        (default: one row per text), and a case scores its best row's similarity. ``neighbours``
        (from :meth:`neighbours`, at least :meth:`fetch_size` columns) skips the search itself."""
        queries = np.asarray(queries, dtype=np.float32)
        owner = np.arange(len(queries)) if owners is None else np.asarray(owners, dtype=np.int64)
        n_texts = int(owner.max()) + 1 if len(owner) else 0
        if neighbours is None:
            neighbours = self.neighbours(queries, self.fetch_size(k), backend=backend)
        scores, positions = neighbours
        rows_of: list[list[int]] = [[] for _ in range(n_texts)]
        for row, text in enumerate(owner):
            rows_of[text].append(row)
        return [self._best(scores[rows], positions[rows], k) for rows in rows_of]

    def _best(self, scores: np.ndarray, positions: np.ndarray, k: int) -> list[CaseMatch]:
        best: dict[int, float] = {}
        for s, p in zip(scores.ravel().tolist(), positions.ravel().tolist()):
            if p >= 0 and s > best.get(p, -np.inf):
                best[p] = s
        out: list[CaseMatch] = []
        seen: set[int] = set()
        for p, s in sorted(best.items(), key=lambda kv: (-kv[1], kv[0])):
            group = int(self._groups[p])
            if group in seen:
                continue
            seen.add(group)
            c = self.cases[p]
            out.append(CaseMatch(id=c.id, url=c.url, title=c.title, claim=c.claim, date=c.date,
                                 narratives=c.narratives, score=round(float(min(s, 1.0)), 4)))
            if len(out) == k:
                break
        return out


# -- the public functions -----------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_cached(directory: str) -> CaseIndex:
    return CaseIndex.load(directory)


def load_index(path: str | Path | CaseIndex | None = None) -> CaseIndex:
    """The index at ``path`` (loaded once per process), or the shipped one of every vendored case."""
    if isinstance(path, CaseIndex):
        return path
    directory = Path(path) if path is not None else INDEX_DIR
    return _load_cached(str(directory.resolve()))


def encoder_for(index: CaseIndex, encoder: Encoder | None = None) -> Encoder:
    """``encoder``, or the one the index names (loaded once per process), checked against the index."""
    if encoder is None:
        encoder = shared_encoder(index.meta.encoder or None)
    index.check(encoder)
    return encoder


def build_index(cases: str | Path | Sequence[IndexedCase] | None, output: str | Path, *,
                encoder: Encoder | None = None, overwrite: bool = False, batch_size: int = 64,
                show_progress_bar: bool | None = None) -> CaseIndex:
    """Build and save an index of a case file (CSV/JSONL), a list of cases, or (None) the vendored cases."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise CaseIndexError(f"{output} already exists and is not empty: choose a new directory or pass overwrite "
                             "(--overwrite)")
    if cases is None:
        records = vendored_cases()
    elif isinstance(cases, (str, Path)):
        records = load_case_file(cases)
    else:
        records = list(cases)

    name = E5_SMALL if encoder is None else str(getattr(encoder, "name_or_path", ""))
    model = encoder if encoder is not None else shared_encoder(E5_SMALL)
    index = CaseIndex.build(records, model, encoder_name=name, batch_size=batch_size,
                            show_progress_bar=show_progress_bar)
    index.save(output)
    return index
