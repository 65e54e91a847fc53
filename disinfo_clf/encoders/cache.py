"""Sentence embeddings kept on disk between training and evaluation runs.

Fitting a head, calibrating it and evaluating it embed the same ~20,000 texts again and again;
on a laptop CPU each pass costs minutes. The cache maps (encoder weights, inference backend,
prefix, text) to the embedding, in safetensors shards under
``$DISINFO_CLF_HOME/embedding-cache`` (default ``~/.cache/disinfo_clf/embedding-cache``).
Prediction never uses it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .source import cache_home

if TYPE_CHECKING:
    from .base import Encoder

logger = logging.getLogger(__name__)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings by text for one encoder, backend and prefix, persisted as shards in ``root``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_home() / "embedding-cache"
        self._tables: dict[str, dict[bytes, np.ndarray]] = {}

    def _table(self, name: str) -> dict[bytes, np.ndarray]:
        if name not in self._tables:
            table: dict[bytes, np.ndarray] = {}
            for shard in sorted(Path(self.root, name).glob("*.safetensors")):
                try:
                    tensors = load_file(str(shard))
                except (SafetensorError, OSError) as exc:  # a torn shard from a killed run is only lost work
                    logger.warning("ignoring unreadable embedding cache shard %s: %s", shard, exc)
                    continue
                for key, vector in zip(tensors["keys"], tensors["vectors"]):
                    table[key.tobytes()] = vector
            self._tables[name] = table
        return self._tables[name]

    def embed(self, encoder: "Encoder", texts: Sequence[str], *, prefix: str, batch_size: int = 64,
              show_progress_bar: bool | None = None) -> np.ndarray:
        """``encoder.embed(texts, prefix=prefix)``, computing only the texts not seen before."""
        batching = "alone" if not getattr(encoder, "batch_independent", True) else "batched"
        # The ONNX file's name carries its export recipe: another recipe gives other embeddings.
        model_file = Path(getattr(encoder, "model_path", "") or "").name
        key = f"{encoder.fingerprint}\0{getattr(encoder, 'backend', '')}\0{model_file}\0{batching}\0{prefix}"
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        table = self._table(name)
        keys = [_key(t) for t in texts]
        missing = sorted({k: i for i, k in enumerate(keys) if k not in table}.values())
        if missing:
            vectors = encoder.embed([texts[i] for i in missing], prefix=prefix, batch_size=batch_size,
                                    show_progress_bar=show_progress_bar)
            new_keys = np.frombuffer(b"".join(keys[i] for i in missing), dtype=np.uint8).reshape(len(missing), 16)
            for key, vector in zip(new_keys, vectors):
                table[key.tobytes()] = vector
            shard_dir = Path(self.root, name)
            shard_dir.mkdir(parents=True, exist_ok=True)
            tmp = shard_dir / f".{uuid.uuid4().hex}.tmp"
            save_file({"keys": np.ascontiguousarray(new_keys), "vectors": np.ascontiguousarray(vectors, dtype=np.float32)},
                      str(tmp))
            os.replace(tmp, shard_dir / f"{uuid.uuid4().hex}.safetensors")
        dim = next(iter(table.values())).shape[0] if table else encoder.dim
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = table[key]
        return out
