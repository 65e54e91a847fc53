"""disinfo_clf: which known pro-Kremlin disinformation narrative a text pushes, whether it states
the claim or debunks it, and which catalogued case it repeats.

    >>> from disinfo_clf import predict
    >>> predict("NATO promised not to expand east and lied.").narrative
    'nato-aggression'

The public names load lazily, so that ``import disinfo_clf.encoders`` (or any other stage) does
not pull in the models.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "CaseMatch": ".matching.index",
    "match": ".matching.search",
    "Evidence": ".results",
    "Model": ".prediction",
    "Prediction": ".results",
    "load_model": ".prediction",
    "predict": ".prediction",
}

__all__ = ["CaseMatch", "Evidence", "Model", "Prediction", "__version__", "load_model", "match", "predict"]

if TYPE_CHECKING:
    from .matching.index import CaseMatch
    from .matching.search import match
    from .prediction import Model, load_model, predict
    from .results import Evidence, Prediction


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
