"""Train a model from a YAML config: a thin wrapper around `disinfo-clf train`.

    python scripts/train.py --config configs/linear.yaml [--output-dir DIR] [--set key=value ...]
"""
from __future__ import annotations

import sys

from disinfo_clf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
