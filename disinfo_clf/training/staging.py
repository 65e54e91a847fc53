"""Writing a model directory all at once: build it in a hidden sibling, rename it into place.

A training run that is killed, or fails, leaves the directory it was asked to write as it was
(the old model, metrics and card together); an existing directory is replaced only when asked.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from ..config import ConfigError

logger = logging.getLogger(__name__)


MODEL_MARKER = "disinfo_clf.json"
"""The file every model directory ``train`` writes holds; ``--overwrite`` replaces only such directories."""


def check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse to write over a file, over a non-empty directory unless ``overwrite``, and ever over a
    non-empty directory that is not a model directory (it may hold other work)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a directory: choose another --output-dir")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(
            f"{out} already exists and is not empty: pass --overwrite to replace it (the old directory stays "
            "until the new model is complete), or choose another --output-dir"
        )
    if not (out / MODEL_MARKER).is_file():
        names = sorted(child.name + ("/" if child.is_dir() else "") for child in out.iterdir())
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise ConfigError(
            f"{out} is not a model directory (it has no {MODEL_MARKER}; it holds {shown}): --overwrite replaces "
            "only a model directory that train wrote. Choose another --output-dir, e.g. "
            f"{out / 'model'}"
        )


def _distributed() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    """Wait for every process of a distributed run (a no-op otherwise)."""
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()


@contextlib.contextmanager
def staged_output(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """A directory to write into; on success it becomes ``out`` (replacing an existing one when
    ``overwrite``), on failure it is removed and ``out`` is left untouched.

    Under ``torchrun``/``accelerate launch`` every process gets the same staging directory and
    only the first one moves it into place, once all are done.
    """
    check_output_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    rank, world = _distributed()
    if world > 1:
        token = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("MASTER_PORT", "run")
        work = out.parent / f".{out.name}.partial-{token}"
        work.mkdir(exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield work
        _barrier()
        if rank == 0:
            _swap(work, out)
        _barrier()
    except BaseException as exc:
        if rank == 0:
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno and exc.filename is None:  # say where it failed to write
            raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from exc
        raise


def _swap(work: Path, out: Path) -> None:
    """Put ``work`` where ``out`` is: the old directory moves aside first and goes once the new one is in place."""
    old = None
    if out.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rmdir(old)
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.debug("moved %s into place at %s", work, out)
