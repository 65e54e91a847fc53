"""Few-shot heads for narratives defined by examples: built once, cached, loaded in milliseconds.

A head depends on the narratives (ids, names, examples, counter-examples), the negatives it was
calibrated against and the encoder's weights; together they make its key. A head whose key
matches one shipped beside its narratives file (``war-2022.head.safetensors``) or one in the user
cache (``~/.cache/disinfo_clf/narrative-heads/KEY.safetensors``) is loaded; otherwise it is
built (seconds) and cached.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from .data.realtext import STANCE_ONLY_SOURCES, load_realtext
from .encoders.source import cache_home
from .models.prototypes import DEFAULT_NEGATIVES, PrototypeConfig, PrototypeHead, load_negative_texts
from .narrative_files import NarrativeSource, load_user_narratives, user_narratives
from .resources import WAR_NARRATIVES
from .taxonomy import Taxonomy

logger = logging.getLogger(__name__)

HEAD_SUFFIX = ".head.safetensors"
MAX_REAL_NEGATIVES = 1200
WAR_CONFIG = PrototypeConfig(hard_fpr=0.10)
"""The shipped war narratives are on by default, so they are held to a stricter bar: at most 10%
of the other narratives' examples and of their counter-examples above the threshold (25% for
files of your own), trading recall for fewer flags on ordinary war reporting."""


def negative_texts() -> list[str]:
    """The ordinary texts heads are calibrated against: the LLM-written ordinary set's train split
    and a fixed sample of the real ordinary texts' train split (news sentences and posts by others,
    :mod:`disinfo_clf.data.realtext`, the stance gate's own sources aside; cut to 600 characters)."""
    real = [rec["text"][:600] for rec in load_realtext(kinds={"ordinary"}, splits={"train"})
            if rec["source"] not in STANCE_ONLY_SOURCES]
    if len(real) > MAX_REAL_NEGATIVES:
        keep = np.random.default_rng(0).choice(len(real), MAX_REAL_NEGATIVES, replace=False)
        real = [real[i] for i in sorted(keep)]
    return load_negative_texts(DEFAULT_NEGATIVES) + real


def head_key(taxonomy: Taxonomy, negatives: list[str], encoder_fingerprint: str, config: PrototypeConfig) -> str:
    """What a head is built from, as one SHA-256: its narratives, negatives, encoder and settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps([n.to_dict() for n in user_narratives(taxonomy)], ensure_ascii=False,
                             sort_keys=True).encode("utf-8"))
    digest.update(hashlib.sha256("\0".join(negatives).encode("utf-8", "surrogatepass")).digest())
    digest.update(encoder_fingerprint.encode("ascii") + json.dumps(asdict(config), sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def build_head(source: NarrativeSource, embed: Callable[[list[str]], np.ndarray], encoder_fingerprint: str,
               config: PrototypeConfig | None = None, *, save_to: Path | None = None) -> tuple[PrototypeHead, bool, str]:
    """``(head, standalone, name)`` for a narratives file, taxonomy or list: the head over its
    narratives with examples, whether it stands alone (``replace: true``: the shipped narratives
    are not scored) and a short name for model ids. ``save_to``: also write the head (with its key)
    there, e.g. beside a narratives file that ships prebuilt."""
    shipped = isinstance(source, (str, Path)) and Path(source).resolve() == WAR_NARRATIVES.resolve()
    config = config or (WAR_CONFIG if shipped else PrototypeConfig())
    taxonomy = load_user_narratives(source)
    own = user_narratives(taxonomy)
    if not own:
        raise ValueError(f"{taxonomy.source or 'narratives'}: no narrative has examples; a narratives file "
                         "defines each narrative by 'examples'")
    standalone = len(own) == len(list(taxonomy))
    name = Path(str(source)).stem if isinstance(source, (str, Path)) else "narratives"
    negatives = negative_texts()
    key = head_key(taxonomy, negatives, encoder_fingerprint, config)
    candidates = [Path(source).with_suffix(HEAD_SUFFIX)] if isinstance(source, (str, Path)) else []
    candidates.append(cache_home() / "narrative-heads" / f"{key}.safetensors")
    for path in candidates:
        if path.is_file():
            head = PrototypeHead.load(path, key=key)
            if head is not None:
                break
    else:
        head = PrototypeHead(own, embed, negatives=negatives, config=config)
        try:
            head.save(candidates[-1], key=key)
        except OSError as exc:  # a read-only cache costs a rebuild next time, nothing else
            logger.warning("could not cache the narratives head at %s: %s", candidates[-1], exc)
    if save_to is not None:
        head.save(save_to, key=key)
    return head, standalone, name
