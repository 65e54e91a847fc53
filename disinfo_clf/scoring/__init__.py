"""Score streams of news records into rows, exactly once: locally or on a Ray cluster.

:func:`score` takes the same ``model`` values as :func:`~disinfo_clf.prediction` (``None``,
``"default"``, ``"fast"``, a model directory or a loaded :class:`~disinfo_clf.prediction.Model`) and
writes one row per input record (schema: :mod:`.rows`), resumably (:mod:`.sinks`,
:mod:`.fingerprints`); ``engine="ray"`` runs it on a cluster (:mod:`.ray`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

from ..prediction import resolve_model
from .fingerprints import input_fingerprint, model_fingerprint
from .local import ScoringModel, run_manifest, score_local
from .ray.engine import score_ray
from .rows import CSV_COLUMNS, JSONL_KEYS, NO_KNOWN_NARRATIVE, PREDICTION_KEYS, ScoreSummary, encode_rows, score_batch
from .sinks import FSYNC_SECONDS, ScoringError, manifest_path
from ..feeds.folders import excluding

__all__ = ["CSV_COLUMNS", "ENGINES", "FSYNC_SECONDS", "JSONL_KEYS", "NO_KNOWN_NARRATIVE", "PREDICTION_KEYS", "ScoreSummary", "ScoringError",
           "ScoringModel", "encode_rows", "input_fingerprint", "model_fingerprint", "run_manifest", "score",
           "score_batch"]

ENGINES = ("local", "ray")


def score(inputs: Sequence[str | Path] | str | Path, output: str | Path | None, *, model: Any = None,
          fmt: Literal["jsonl", "csv", "parquet"] = "jsonl", text_field: str | None = None, id_field: str | None = None,
          input_format: str | None = None, resume: bool = False, overwrite: bool = False, batch_size: int = 256,
          predict_batch_size: int | None = None, show_progress_bar: bool | None = None, engine: str = "local",
          **engine_options: Any) -> ScoreSummary:
    """Score every record of ``inputs`` and write one row per record to ``output`` (``None``/``-``: stdout).

    ``model`` takes what :func:`~disinfo_clf.prediction` takes. ``batch_size`` records are scored and
    written at a time; ``predict_batch_size`` is handed to ``model.predict``. An existing non-empty
    ``output`` is replaced only with ``overwrite``. ``resume`` continues a killed run: the output's
    manifest (``OUT.manifest.json``: inputs' sizes and SHA-256, reader options, output format, model
    id and fingerprint over every file of the model and the parts it names) must match this run's,
    and its rows the inputs' first records; the rest is appended. While it runs the output is
    locked. Inputs are files, folders, ``-`` (stdin), Parquet files and URIs pyarrow opens.
    ``engine="ray"`` runs the job on a Ray cluster (:func:`.ray.engine.score_ray`, with
    ``engine_options``; ``output`` is then a folder and ``fmt`` may be ``parquet``).
    """
    if engine not in ENGINES:
        raise ScoringError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    common = dict(fmt=fmt, text_field=text_field, id_field=id_field, input_format=input_format, resume=resume,
                  overwrite=overwrite, batch_size=batch_size, predict_batch_size=predict_batch_size,
                  show_progress_bar=show_progress_bar)
    own = [] if output is None or str(output) == "-" else [output, manifest_path(Path(output))]
    with excluding(own):  # an output inside an input folder is not an input
        if engine == "ray":
            return score_ray(inputs, output, model=model, **common, **engine_options)
        if engine_options:
            raise ScoringError(f"{', '.join(sorted(engine_options))}: options of the ray engine; the local engine takes none")
        if fmt not in ("jsonl", "csv"):
            raise ScoringError(f"unknown output format {fmt!r}; choose jsonl or csv (parquet: with the ray engine)")
        return score_local(inputs, output, model=resolve_model(model), **common)
