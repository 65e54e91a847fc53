"""The shipped `evaluate` metric module: loads offline by path and scores like the SemEval scorer."""
from __future__ import annotations

import numpy as np
import pytest

from disinfo_clf.training.metrics import load_metric


def test_multilabel_f1_loads_by_path_and_scores_semeval_style() -> None:
    metric = load_metric("multilabel_f1")
    gold = [[1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0]]
    pred = [[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 0]]
    result = metric.compute(predictions=pred, references=gold)
    # per text: 1 (exact), 1 (nothing vs nothing = "Other"), 2/3, 0 (a narrative where there is none)
    assert result["samples_f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
    assert result["micro_f1"] == pytest.approx(2 * 2 / (3 + 3))
    assert result["macro_f1"] == pytest.approx(np.mean([2 / 3, 1.0, 0.0]))


def test_unknown_metric_lists_the_shipped_ones() -> None:
    with pytest.raises(ValueError, match="multilabel_f1"):
        load_metric("accuracy")
