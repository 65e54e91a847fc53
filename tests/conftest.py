"""Shared fixtures: the vendored data, and ONE tiny encoder model for the whole session.

Nothing here touches the network: the tiny encoder's tokenizer is trained on our own corpus,
its weights are random, and everything loads back through the real ``from_pretrained`` path.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from disinfo_clf.data import load_database_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# CI runs the property tests on a fixed sequence of examples, so a red build can be reproduced.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def titles() -> list[str]:
    """Database titles (one-sentence claims), oldest first."""
    return [case.title for case in reversed(load_database_csv())]


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory, titles: list[str]) -> Path:
    """A tiny random encoder with a WordPiece tokenizer trained on our titles, saved with save_pretrained."""
    from tiny_encoder import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"), texts=titles[:4000], vocab_size=4000)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """THE tiny model: a narrative classifier trained with configs/tiny-encoder.yaml on the tiny encoder."""
    from disinfo_clf.config import load_config
    from disinfo_clf.training.train import train

    out = tmp_path_factory.mktemp("tiny-model")
    config = load_config(
        ROOT / "configs" / "tiny-encoder.yaml",
        [f"encoder.model_name_or_path={tiny_encoder_dir}", "encoder.max_steps=240", "encoder.eval_steps=80"],
    )
    return train(config, output_dir=out, config_path="configs/tiny-encoder.yaml").model_dir
