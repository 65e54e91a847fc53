"""``score(..., engine="ray")``: score on a Ray cluster, exactly once across failures.

The driver reads the inputs with the local engine's readers (plus Parquet and remote URIs, see
:mod:`.sources`), cuts the record stream into numbered shards and hands them to a pool of Ray
actors; each actor loads the model once (on its GPU when it has one) and, per shard, builds the
local engine's rows and writes ``OUT_DIR/part-<n>.jsonl`` (or ``.parquet``) atomically. The driver
keeps ``OUT_DIR/_manifest.json`` (inputs' fingerprint, model, shard → rows). A killed worker is
restarted by Ray and its shard scored again; after a killed driver, ``resume=True`` keeps every
part file that holds its shard's records and scores the rest, so every record is in the output
exactly once. Ray Data reads the result back with ``ray.data.read_json(OUT_DIR)`` /
``read_parquet(OUT_DIR)``; part files sorted by name are the local engine's output, in order.

Shards are scored by plain actors rather than ``Dataset.map_batches``: Ray Data regroups blocks
as it streams, so an output file could not be tied to one input shard, which exactly-once needs.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ...feeds.readers import InputError
from ...models.meta import ModelDirectoryError, progress_disabled
from ..rows import ScoreSummary
from ..sinks import ScoringError
from ...resources import TIERS
from .manifest import Manifest, count_part, prepare_output, remove_temporary_files
from .shards import DEFAULT_SHARD_SIZE, FORMATS, ModelSpec, Shard, ShardScorer, plan_shards
from ...feeds.sources import check_sources, is_uri, read_sources
from ..fingerprints import fingerprint_sources
from ...prediction import Model, load_model

__all__ = ["INSTALL_HINT", "score_ray"]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'the ray engine needs Ray: pip install "disinfo-clf[ray]" (or pip install "ray[data]")'
QUEUED_PER_WORKER = 2
"""Shards handed to a worker at a time: one it scores, one waiting, so that it never idles."""
WAIT_WARNING_S = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ScoringError(INSTALL_HINT) from exc
    return ray


def model_spec(model: Any) -> ModelSpec:
    """How workers get ``model``: its directory (``None``: the default; a tier name such as ``"fast"``
    stands for the shipped directory), or a factory they call.

    A loaded model cannot travel to other machines; pass its directory instead.
    """
    if model is None:
        return ("path", None)
    if isinstance(model, str) and model in TIERS:
        return ("path", str(TIERS[model]))
    if isinstance(model, (str, os.PathLike)):
        directory = Path(model).expanduser().resolve()
        if not directory.is_dir():
            raise ModelDirectoryError(f"model directory {directory} does not exist: pass a directory written by "
                                      "`disinfo-clf train` (every Ray node needs it at this path), or model=None "
                                      "for the embedded default")
        return ("path", str(directory))
    if isinstance(model, type) or (callable(model) and not hasattr(model, "predict")):
        return ("factory", model)
    directory = getattr(model, "directory", None)
    if directory is not None:
        return ("path", str(directory))

    if isinstance(model, Model) and model is load_model():
        return ("path", None)
    raise ScoringError("the ray engine loads the model on every worker: pass the model directory "
                       "(model='DIR', or None for the embedded default) or a function that builds the model, "
                       "not a loaded model")


def score_ray(inputs: Sequence[str | Path], output: str | Path, *, model: Any = None, fmt: str = "jsonl",
              text_field: str | None = None, id_field: str | None = None, input_format: str | None = None,
              resume: bool = False, overwrite: bool = False, batch_size: int = 256,
              predict_batch_size: int | None = None, show_progress_bar: bool | None = None,
              address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0,
              cpus_per_worker: float = 1.0, shard_size: int | None = None, max_attempts: int = 3) -> ScoreSummary:
    """Score every record of ``inputs`` on Ray into the folder ``output``: part files plus ``_manifest.json``.

    ``model`` is a model directory (``None``: the embedded default) or a zero-argument callable that
    returns a model; every worker loads it once. ``address`` is the Ray cluster to join (default:
    the running session, ``RAY_ADDRESS``, or a new local one); ``workers`` actors (default: one per
    CPU, or per ``gpus_per_worker`` GPUs) each reserve ``cpus_per_worker`` CPUs and
    ``gpus_per_worker`` GPUs. ``shard_size`` records make one part file. A shard whose worker dies is
    scored again, up to ``max_attempts`` times. ``resume`` continues a killed run in ``output``;
    ``overwrite`` replaces one. The summary counts rows kept from the resumed run too.
    """
    started = time.monotonic()
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    _check_arguments(fmt, batch_size, shard_size, workers, gpus_per_worker, cpus_per_worker, max_attempts)
    if output is None or str(output) == "-" or is_uri(output):
        raise ScoringError("the ray engine writes a folder of part files: name it with -o OUT_DIR, a local folder "
                           "(on a cluster: one every node shares, e.g. over NFS)")
    try:
        check_sources(inputs, input_format)
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    predict_kwargs: dict[str, Any] = {"show_progress_bar": False}
    if predict_batch_size is not None:
        predict_kwargs["batch_size"] = predict_batch_size
    job = _Job(inputs, model_spec(model), fmt, {"text_field": text_field, "id_field": id_field,
                                                "input_format": input_format}, batch_size, predict_kwargs,
               workers, cpus_per_worker, gpus_per_worker, max_attempts)
    ray = _import_ray()
    directory = Path(output).expanduser().resolve()
    previous, lock = prepare_output(directory, resume=resume, overwrite=overwrite)
    try:
        if shard_size is None:
            shard_size = int(previous.header.get("shard_size", DEFAULT_SHARD_SIZE)) if previous else DEFAULT_SHARD_SIZE
        fingerprint = fingerprint_sources(inputs, **job.reader)
        header = Manifest.make_header(fmt=fmt, shard_size=shard_size, fingerprint=fingerprint)
        if previous is not None:  # refuse other inputs or options before starting any worker
            previous.check(header)
        started_ray = _connect(ray, address)
        try:
            summary = _run(ray, job, directory, previous, header, progress_disabled(show_progress_bar))
        finally:
            if started_ray:
                ray.shutdown()
    finally:
        os.close(lock)
    summary.elapsed = time.monotonic() - started
    return summary


@dataclass(frozen=True)
class _Job:
    """What every shard of a run is scored with."""

    inputs: list[str | Path]
    spec: ModelSpec
    fmt: str
    reader: dict[str, str | None]
    """``text_field``, ``id_field`` and ``input_format``."""
    batch_size: int
    predict_kwargs: dict[str, Any]
    workers: int | None
    cpus_per_worker: float
    gpus_per_worker: float
    max_attempts: int


def _run(ray: Any, job: _Job, directory: Path, previous: Manifest | None, header: dict[str, Any],
         disable_bar: bool | None) -> ScoreSummary:
    """Score every shard not already in ``directory`` with a pool of actors; keep the manifest up to date."""
    summary = ScoreSummary(output=str(directory))
    pool = _ActorPool(ray, job, directory)
    manifest: Manifest | None = None
    try:
        header = {**header, "model": pool.identity()}
        if previous is not None:
            previous.check(header)
            manifest = previous
            manifest.complete = False
        else:
            manifest = Manifest(directory, header)
        manifest.save()
        shards = 0
        with tqdm(desc="scoring", unit=" records", disable=disable_bar) as bar:
            records = read_sources(job.inputs, **job.reader)
            for shard in plan_shards(records, header["shard_size"]):
                shards += 1
                if manifest.done(shard, summary):
                    bar.update(len(shard.records))
                    continue
                pool.submit(shard)
                _collect(pool.finished(block=False), manifest, summary, bar)
            while pool.busy:
                _collect(pool.finished(block=True), manifest, summary, bar)
        if summary.resumed:
            logger.info("%s: %d records kept from the resumed run", directory, summary.resumed)
        manifest.finish(shards, summary)
        remove_temporary_files(directory)
    except InputError as exc:
        raise ScoringError(str(exc)) from exc
    finally:
        pool.close()
        if manifest is not None and not manifest.complete:
            manifest.save()
    return summary


def _check_arguments(fmt: str, batch_size: int, shard_size: int | None, workers: int | None, gpus: float,
                     cpus: float, max_attempts: int) -> None:
    if fmt not in FORMATS:
        raise ScoringError(f"the ray engine writes {' or '.join(FORMATS)}, not {fmt!r}: pass --format jsonl or parquet")
    for name, value, least in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1), ("workers", workers, 1),
                               ("max_attempts", max_attempts, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ScoringError(f"{name} must be an integer of at least {least}, got {value!r}")
    if gpus < 0 or cpus < 0:
        raise ScoringError(f"gpus_per_worker and cpus_per_worker cannot be negative (got {gpus}, {cpus})")


def _connect(ray: Any, address: str | None) -> bool:
    """Join the running Ray session, ``address``, ``RAY_ADDRESS`` or a new local cluster; whether we started it."""
    if ray.is_initialized():
        if address:
            logger.warning("Ray is already initialised in this process: using that session, not %s", address)
        return False
    kwargs: dict[str, Any] = {"configure_logging": False}
    if not address and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address or None, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ScoringError(f"cannot connect to the Ray cluster at {address or os.environ.get('RAY_ADDRESS') or 'a new local one'}: "
                           f"{exc}; check --address (e.g. ray://HEAD:10001 or HEAD:6379)") from exc
    return True


def _plan_workers(ray: Any, workers: int | None, cpus: float, gpus: float) -> int:
    """How many actors to start: ``workers``, or as many as the cluster's CPUs (GPUs) hold."""
    resources = ray.cluster_resources()
    if gpus > resources.get("GPU", 0):
        raise ScoringError(f"--gpus-per-worker {gpus:g} asks for more GPUs than the Ray cluster has "
                           f"({resources.get('GPU', 0):g}): lower it, or add GPU nodes to the cluster first")
    if cpus > resources.get("CPU", 0):
        raise ScoringError(f"each worker asks for {cpus:g} CPUs but the Ray cluster has {resources.get('CPU', 0):g}")
    fits = int(resources["GPU"] // gpus) if gpus > 0 else int(resources["CPU"] // cpus) if cpus > 0 else 1
    if workers is None:
        return max(1, fits)
    if workers > fits:
        logger.warning("%d workers asked for, but the cluster's resources hold %d at a time: the others start when "
                       "resources free up (or the autoscaler adds nodes)", workers, fits)
    return workers


def _collect(results: list[dict[str, Any]], manifest: Manifest, summary: ScoreSummary, bar: Any) -> None:
    for entry in results:
        if not (manifest.directory / entry["file"]).is_file():
            raise ScoringError(f"worker {entry['worker']} wrote {entry['file']} but this machine cannot see it in "
                               f"{manifest.directory}: on a cluster, OUT_DIR must be a folder every node shares "
                               "(e.g. over NFS), at the same path")
        manifest.add(entry)
        count_part(summary, entry)
        bar.update(entry["records"])


class _ActorPool:
    """A fixed set of :class:`ShardScorer` actors, each handed at most :data:`QUEUED_PER_WORKER` shards."""

    def __init__(self, ray: Any, job: _Job, directory: Path) -> None:
        self.ray, self.max_attempts = ray, job.max_attempts
        self.exceptions = ray.exceptions
        cpus, gpus = job.cpus_per_worker, job.gpus_per_worker
        workers = _plan_workers(ray, job.workers, cpus, gpus)
        remote = ray.remote(ShardScorer).options(num_cpus=cpus, num_gpus=gpus, max_restarts=-1,
                                                 max_task_retries=job.max_attempts - 1)
        self.actors = [remote.remote(job.spec, str(directory), job.fmt, job.batch_size, job.predict_kwargs)
                       for _ in range(workers)]
        self._starting = {actor.describe.remote(): i for i, actor in enumerate(self.actors)}
        self._ready: list[int] = []
        self._load = collections.Counter[int]()
        self._running: dict[Any, tuple[Shard, int]] = {}
        self._done: list[dict[str, Any]] = []
        self._identity: dict[str, str] | None = None
        self._resources = (workers, cpus, gpus)

    @property
    def busy(self) -> bool:
        """Whether shards are still being scored."""
        return bool(self._running)

    def identity(self) -> dict[str, str]:
        """The model's id and fingerprint, from the first worker to load it."""
        while self._identity is None:
            self._wait()
        return self._identity

    def submit(self, shard: Shard) -> None:
        """Hand ``shard`` to the least busy worker, first waiting for one to have room.

        Ray restarts a worker that dies and gives it its shards again (up to ``max_attempts`` tries
        each): part files are written atomically under the shard's name, so a retry replaces nothing
        that was complete and doubles nothing.
        """
        while not self._ready or min(self._load[i] for i in self._ready) >= QUEUED_PER_WORKER:
            self._wait()
        worker = min(self._ready, key=lambda i: self._load[i])
        ref = self.actors[worker].score_shard.remote(shard.index, shard.records)
        self._running[ref] = (shard, worker)
        self._load[worker] += 1

    def finished(self, *, block: bool) -> list[dict[str, Any]]:
        """The results of shards finished since the last call (waiting for one when ``block``)."""
        if block and not self._done and self._running:
            self._wait()
        done, self._done = self._done, []
        return done

    def _wait(self) -> None:
        refs = [*self._starting, *self._running]
        if not refs:
            raise ScoringError("no Ray worker is left to score with")
        waited = time.monotonic()
        ready: list[Any] = []
        while not ready:
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=WAIT_WARNING_S)
            if not ready and not self._ready:
                workers, cpus, gpus = self._resources
                logger.warning("still waiting for a Ray worker after %.0f s: %d asked for, %s CPU and %s GPU each; "
                               "the cluster has %s", time.monotonic() - waited, workers, cpus, gpus,
                               self.ray.cluster_resources())
        ref = ready[0]
        if ref in self._starting:
            self._started(ref, self._starting.pop(ref))
        else:
            self._finished(ref, *self._running.pop(ref))

    def _started(self, ref: Any, worker: int) -> None:
        try:
            info = self.ray.get(ref)
        except self.exceptions.RayTaskError as exc:
            raise ScoringError(f"a Ray worker could not load the model: {exc.cause or exc}") from exc
        except self.exceptions.RayActorError as exc:
            if exc.actor_init_failed:  # the model could not be loaded: its error is the message's last line
                reason = next((line for line in reversed(_ANSI.sub("", str(exc)).splitlines()) if line.strip()), "")
                raise ScoringError(f"a Ray worker could not load the model: {reason}") from exc
            raise ScoringError(f"a Ray worker died while loading the model: {exc}") from exc
        identity = {"id": info["id"], "fingerprint": info["fingerprint"]}
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            raise ScoringError(f"Ray workers loaded different models ({self._identity} and {identity} on "
                               f"{info['worker']}): give every node the same model directory")
        logger.debug("Ray worker %s is ready (model %s)", info["worker"], info["id"])
        self._ready.append(worker)

    def _finished(self, ref: Any, shard: Shard, worker: int) -> None:
        self._load[worker] -= 1
        try:
            self._done.append(self.ray.get(ref))
        except self.exceptions.RayTaskError as exc:
            cause = exc.cause or exc
            raise ScoringError(f"scoring shard {shard.index} ({shard.key}) failed: {type(cause).__name__}: {cause}") from exc
        except (self.exceptions.RayActorError, self.exceptions.WorkerCrashedError,
                self.exceptions.ObjectLostError) as exc:
            raise ScoringError(f"shard {shard.index} ({shard.key}) was tried {self.max_attempts} times and its worker "
                               f"died each time ({type(exc).__name__}: {exc}); fix the cause (memory?) and rerun with "
                               "--resume: the shards already written are kept") from exc

    def close(self) -> None:
        """Stop every worker."""
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception as exc:  # a worker that is already gone needs no stopping
                logger.debug("could not stop a Ray worker: %s", exc)
