"""Loading a Hugging Face encoder (tokenizer + sequence-classification model) without running its code.

Every load passes ``trust_remote_code=False`` and a local directory that carries custom code
(``auto_map``, ``*.py``) is refused first; a missing, incomplete or corrupt model fails with
one line naming it and saying what to do.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from safetensors import SafetensorError

from .meta import ModelDirectoryError, ProblemType
from .folder_checks import refuse_code

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

TRAINING_ADVICE = (
    "Set encoder.model_name_or_path to a local directory holding a transformers model (config.json, tokenizer "
    "files and model.safetensors), build a tiny one with `disinfo-clf build-tiny-encoder DIR`, or set "
    "encoder.local_files_only: false on a machine with access to the Hugging Face Hub."
)
LOADING_ADVICE = "The model directory is damaged or incomplete: retrain it, or copy it again from where it came from."


def load_pretrained_encoder(
    model_name_or_path: str,
    *,
    local_files_only: bool = False,
    labels: Sequence[str] | None = None,
    problem_type: ProblemType | None = None,
    advice: str = TRAINING_ADVICE,
) -> tuple["PreTrainedTokenizerBase", "PreTrainedModel"]:
    """Load a tokenizer and a sequence-classification model from a Hub name or local directory,
    with a fresh head for ``labels`` when given; fails with ``advice`` on what to do instead.

    Never runs code that comes with a model: ``trust_remote_code=False`` everywhere, and a
    local directory with custom code (``auto_map``, ``*.py``) is refused before transformers reads it.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    kwargs: dict[str, Any] = {}
    if labels is not None:
        kwargs = {
            "num_labels": len(labels),
            "problem_type": problem_type,
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            # A checkpoint that already has a head for other labels gets a new one.
            "ignore_mismatched_sizes": True,
        }
    refuse_code(model_name_or_path)
    quiet_progress_bars()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, local_files_only=local_files_only,
                                                  trust_remote_code=False)
        with _transformers_errors_only(labels is not None):  # a new head is expected, not worth a report
            model = AutoModelForSequenceClassification.from_pretrained(
                model_name_or_path, local_files_only=local_files_only, use_safetensors=True, trust_remote_code=False,
                **kwargs,
            )
    except (OSError, ValueError, SafetensorError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, SafetensorError) and Path(model_name_or_path).is_dir():
            where = f"{Path(model_name_or_path, 'model.safetensors')} is corrupt"
        else:
            where = f"cannot load the encoder {model_name_or_path!r} ({'local directory' if Path(model_name_or_path).exists() else 'model'})"
        raise ModelDirectoryError(f"{where}: {reason[:300]}. {advice}") from exc
    if labels is not None:
        logger.info("%s: a new classification head for %d labels", model_name_or_path, len(labels))
    return tokenizer, model


def quiet_progress_bars() -> None:
    """No transformers or datasets progress bars when standard error is not a terminal (logs, CI)."""
    if sys.stderr.isatty():
        return
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


@contextlib.contextmanager
def _transformers_errors_only(active: bool) -> Iterator[None]:
    from transformers.utils import logging as transformers_logging

    if not active:
        yield
        return
    before = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(before)
