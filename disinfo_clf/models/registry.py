"""One registry from a model directory's ``backend`` to the class that loads it.

Like sentence-transformers' ``modules.json``, a directory names its type (``disinfo_clf.json``
``backend``, and for a combined model each part's ``type`` in ``combined.json``); loading looks the
type up here. Only the classes listed here can ever be loaded: a directory cannot name arbitrary code.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .errors import ModelDirectoryError
from .meta import META_FILE, ModelMeta, TextClassifier

BACKENDS: dict[str, str] = {
    "linear": "disinfo_clf.models.linear:LinearClassifier",
    "embedding-head": "disinfo_clf.models.embedding_head:EmbeddingHeadClassifier",
    "combined": "disinfo_clf.models.combined:CombinedClassifier",
    "encoder": "disinfo_clf.models.encoder:EncoderClassifier",
    "encoder-lora": "disinfo_clf.models.lora:LoraEncoderClassifier",
}
"""Backend name → ``module:class``. Modules load on first use: the torch backends cost seconds to
import, and a TF-IDF model never needs them."""


def backend_class(backend: str, where: str | Path = "") -> type:
    """The class registered for ``backend``; :class:`ModelDirectoryError` naming ``where`` if none is."""
    target = BACKENDS.get(backend)
    if target is None:
        raise ModelDirectoryError(f"{where}: unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def load_classifier(directory: str | Path) -> TextClassifier:
    """Load any model directory written by this library, whichever backend wrote it."""
    meta = ModelMeta.load(directory)
    return backend_class(meta.backend, Path(directory, META_FILE)).from_pretrained(directory)
