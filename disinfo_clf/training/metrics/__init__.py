"""``evaluate`` metric modules shipped inside the package, loaded by path (no Hub access)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent


def load_metric(name: str) -> Any:
    """``evaluate.load`` of a shipped metric module, e.g. ``load_metric("multilabel_f1")``."""
    import evaluate

    path = METRICS_DIR / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no shipped metric {name!r}; known: {', '.join(known)}")
    return evaluate.load(str(path))
