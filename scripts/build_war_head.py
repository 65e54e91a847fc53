"""Prebuild the few-shot head of the shipped war narratives beside their file.

``disinfo_clf/resources/narratives/war-2022.yaml`` is scored by default; its head
(``war-2022.head.safetensors``) is built from the file's examples against the ordinary negatives and
keyed by them, the examples and the encoder's weights, so the package loads it in milliseconds instead
of building it on a user's first call. Rerun after changing the file, the real-text training split (its
ordinary texts are negatives) or the encoder:

    PYTHONPATH=$PWD python scripts/build_war_head.py
"""
from __future__ import annotations

import logging
import sys

from disinfo_clf import load_model
from disinfo_clf.models.embedding_head import embeddings_of, encoder_for
from disinfo_clf.narrative_heads import HEAD_SUFFIX, build_head
from disinfo_clf.resources import WAR_NARRATIVES

logger = logging.getLogger("build_war_head")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = WAR_NARRATIVES.with_suffix(HEAD_SUFFIX)
    target.unlink(missing_ok=True)  # build it anew (or take the cached build) rather than read the old one
    base = load_model(narratives=False)
    encoder = encoder_for(embeddings_of(base.narratives)[0])
    build_head(WAR_NARRATIVES, lambda texts: base.embed(texts, show_progress_bar=False), encoder.fingerprint,
               save_to=target)
    logger.info("wrote %s", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
