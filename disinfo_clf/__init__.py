"""disinfo_clf: which known pro-Kremlin disinformation narrative a text pushes, and whether it
states the claim or debunks it.

    >>> from disinfo_clf import predict
    >>> predict("NATO promised not to expand east and lied.").narrative
    'nato-aggression'
"""
from __future__ import annotations

__version__ = "0.1.0"

from .index import CaseMatch, match  # noqa: E402
from .predict import Evidence, Model, Prediction, load_model, predict  # noqa: E402

__all__ = ["CaseMatch", "Evidence", "Model", "Prediction", "__version__", "load_model", "match", "predict"]
