"""disinfo_clf: which known pro-Kremlin disinformation narrative a text pushes, and whether it
states the claim or debunks it."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
