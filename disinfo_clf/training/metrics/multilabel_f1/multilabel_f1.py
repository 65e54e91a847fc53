"""Multi-label F1 for narrative classification: macro, micro and samples F1.

Samples F1 follows the SemEval-2025 Task 10 (narrative classification) scorer: a text with no
gold narrative counts as carrying the single label "Other", so predicting nothing for it is a
perfect match and predicting any narrative a miss.

    metric = evaluate.load("path/to/multilabel_f1")
    metric.compute(predictions=[[1, 0, 1]], references=[[1, 0, 0]])
"""
import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score

_DESCRIPTION = "Macro, micro and SemEval-2025 Task 10 samples F1 for multi-hot narrative predictions."
_INPUTS = """
Args:
    predictions: multi-hot rows (0/1 per label), one per text.
    references: multi-hot gold rows of the same shape.
Returns:
    macro_f1, micro_f1, samples_f1 (floats).
"""


def samples_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-text F1 with empty label sets scored as the label "Other"."""
    gold = np.asarray(gold, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    g = np.hstack([gold, ~gold.any(axis=1, keepdims=True)])
    p = np.hstack([pred, ~pred.any(axis=1, keepdims=True)])
    tp = (g & p).sum(axis=1)
    denom = g.sum(axis=1) + p.sum(axis=1)
    return float(np.mean(2 * tp / denom))


class MultilabelF1(evaluate.Metric):
    """Macro, micro and samples F1 over multi-hot label rows."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int8")),
                }
            ),
        )

    def _compute(self, predictions: list, references: list) -> dict:
        pred = np.asarray(predictions, dtype=int)
        gold = np.asarray(references, dtype=int)
        return {
            "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
            "samples_f1": samples_f1(gold, pred),
        }
