"""A deterministic stand-in for the e5 encoder: hashed bag of words, L2-normalised.

Texts sharing words are close and identical texts identical, which is all the index and
relevance code needs to be tested without the real weights.
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np


class HashingEncoder:
    """Answers the ``Encoder`` interface (``embed``, ``prompt``, ``dim``, ``name_or_path``, ``fingerprint``)."""

    def __init__(self, dim: int = 64, fingerprint: str = "f" * 64, name_or_path: str = "hashing-encoder") -> None:
        self.dim = dim
        self.fingerprint = fingerprint
        self.name_or_path = name_or_path
        self.calls: list[int] = []
        self.prompts = {"query": "query: "}

    def prompt(self, name: str | None = "query") -> str:
        return self.prompts.get(name, "") if name is not None else ""

    def resolve_prefix(self, prefix: str | None = None, prompt_name: str | None = "query") -> str:
        return self.prompt(prompt_name) if prefix is None else prefix

    def embed(self, texts: Sequence[str], *, prefix: str | None = None, prompt_name: str | None = "query", batch_size: int = 64,
              show_progress_bar: bool | None = None) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.casefold()):
                digest = hashlib.sha256(word.encode("utf-8")).digest()
                out[i, int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] % 2 else -1.0
            out[i, 0] += 0.01  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)
