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
import shutil
import sys

from disinfo_clf import load_model
from disinfo_clf.encoders.source import cache_home
from disinfo_clf.models.embedding_head import embeddings_of, encoder_for
from disinfo_clf.narrative_heads import HEAD_SUFFIX, WAR_CONFIG, build_head, head_key, negative_texts
from disinfo_clf.narrative_files import load_user_narratives
from disinfo_clf.resources import WAR_NARRATIVES

logger = logging.getLogger("build_war_head")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = WAR_NARRATIVES.with_suffix(HEAD_SUFFIX)
    target.unlink(missing_ok=True)  # build it anew rather than reading the old one
    base = load_model(narratives=False)
    spec = embeddings_of(base.narratives)[0]
    encoder = encoder_for(spec)
    build_head(WAR_NARRATIVES, lambda texts: encoder.embed(texts, prefix=spec.prefix, show_progress_bar=False),
               encoder.fingerprint)
    key = head_key(load_user_narratives(WAR_NARRATIVES), negative_texts(), encoder.fingerprint, WAR_CONFIG)
    shutil.copyfile(cache_home() / "narrative-heads" / f"{key}.safetensors", target)
    logger.info("wrote %s", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
