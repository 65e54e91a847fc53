"""Datasets with time splits, the training loop, combined models, evaluation, metrics and the card.

Run it with ``disinfo-clf train --config configs/X.yaml``; see :func:`disinfo_clf.training.train.train`.
"""
