"""Engines that run a scoring job.

``local`` is :func:`disinfo_clf.scoring.score` itself (one process). ``ray``
(:func:`disinfo_clf.engines.ray_engine.score_ray`, needs ``pip install "disinfo-clf[ray]"``) spreads
the records over a pool of Ray actors and writes one output shard per input shard, exactly once.
Choose one with ``score(..., engine=...)`` or ``disinfo-clf score --engine``.
"""
