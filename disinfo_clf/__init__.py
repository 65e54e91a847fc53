"""disinfo_clf: which known pro-Kremlin disinformation narrative a text pushes, whether it states
the claim or debunks it, and which catalogued case it repeats.

    >>> from disinfo_clf import predict
    >>> predict("NATO promised not to expand east and lied.").narrative
    'nato-aggression'

The public names load lazily, so that ``import disinfo_clf.encoders`` (or any other stage) does
not pull in the models.
"""
from __future__ import annotations

from .lazy import lazy_exports

from typing import TYPE_CHECKING

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
