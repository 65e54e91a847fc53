"""Build real war-era claims labelled with the war-2022 narratives, for scripts/eval_user_narratives.py.

The claims are ClaimReview entries (claims checked by fact-checkers in ~20 languages, 2022–23)
collected in the public repository Karun842002/fyp-data-scraper, which has no licence: the text
is NOT shipped. This script reads it from a local git mirror of that repository and joins our
labels (``scripts/war_claims_labels.json``, keyed by a hash of the claim text; labels by us) into
``runs/war_claims_labelled.jsonl`` with fields ``text``, ``lang``, ``narratives``, ``rating``.

    PYTHONPATH=. python scripts/build_war_claims.py --mirror /path/to/Karun842002+fyp-data-scraper/repo
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

FILES = ("invasion_of_ukraine_by_russia", "russia_invasion", "russia_ukraine_conflict", "russia_ukraine_war", "ukraine_war")
COMMIT = "3ed3efc066"
LABELS = Path(__file__).with_name("war_claims_labels.json")


def claim_key(text: str) -> str:
    """The label file's key of a claim: sha256 of its whitespace-normalised text, 16 hex digits."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, required=True, help="git directory of Karun842002/fyp-data-scraper")
    parser.add_argument("--out", type=Path, default=Path("runs/war_claims_labelled.jsonl"))
    args = parser.parse_args()
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    rows: dict[str, dict] = {}
    for name in FILES:
        blob = subprocess.run(["git", "-C", str(args.mirror), "show", f"{COMMIT}:datasets/{name}.json"],
                              capture_output=True, text=True, check=True).stdout
        for claim in json.loads(blob)["claims"]:
            text = " ".join(claim["text"].split())
            key = claim_key(text)
            if key in rows or key not in labels:
                continue
            review = claim["claimReview"][0]
            rows[key] = {"text": text, "lang": review.get("languageCode", ""), "narratives": labels[key],
                         "rating": review.get("textualRating", ""), "source": f"Karun842002/fyp-data-scraper:{name}"}
    missing = len(labels) - len(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows.values():
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} claims ({sum(bool(r['narratives']) for r in rows.values())} labelled with a narrative) "
          f"to {args.out}; {missing} labelled claims not found")


if __name__ == "__main__":
    main()
