"""Files shipped inside the package: vendored data, the taxonomy and the default models."""
from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
DATA_DIR = RESOURCES / "data"
SEEDS_DIR = DATA_DIR / "seeds"
REVIEW_CSV = DATA_DIR / "euvsdisinfo" / "disinfo_review_2015_2017.csv"
DATABASE_CSV = DATA_DIR / "euvsdisinfo" / "database_2015_2020.csv"
TAXONOMY_YAML = RESOURCES / "narratives.yaml"
MODELS_DIR = RESOURCES / "models"
FAST_MODEL_DIR = MODELS_DIR / "narratives-linear"
"""The ``fast`` tier: the English TF-IDF model, for very large English streams."""
DEFAULT_MODEL_DIR = MODELS_DIR / "narratives-default"
"""The ``default`` tier: multilingual-e5-small heads mixed with the fast model, with relevance and matches."""
ROLE_MODEL_DIR = MODELS_DIR / "roles-linear"
TIERS = {"default": DEFAULT_MODEL_DIR, "fast": FAST_MODEL_DIR}
"""Model names ``predict(model=...)`` and ``--model`` accept besides a directory."""


def seed_paths() -> list[Path]:
    """The five vendored seed case documents, in file-name order."""
    return sorted(SEEDS_DIR.glob("*.txt"))
NARRATIVES_DIR = RESOURCES / "narratives"
WAR_NARRATIVES = NARRATIVES_DIR / "war-2022.yaml"
"""The main narratives of the full-scale war since 2022, defined by examples; the default model
scores them unless ``load_model(narratives=False)``."""
LANGID_MODEL = RESOURCES / "langid" / "lid.176.ftz"
"""fastText's language-identification model (CC BY-SA 3.0; see ``langid/README.md``)."""
LANGID_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
"""sha256 of the shipped ``lid.176.ftz`` (``disinfo-clf doctor`` checks it)."""
