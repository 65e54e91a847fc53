"""What every encoder backend shares: the :class:`Encoder` interface (tokenise, length-sorted
batches under a token budget, pooled L2-normalised embeddings) and the helpers that read an
encoder directory."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .source import resolve_encoder
from .weights import EncoderLoadError, weights_sha256

if TYPE_CHECKING:
    import tokenizers

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx-int8", "onnx")
CPU_TOKENS_PER_THREAD = 1024
"""Default token budget of a batch (rows times padded width) on the CPU, per thread: batches
that fit the caches run fastest there (measured on e5-small: 1,024 tokens a thread embed 40%
more 400-character windows per CPU-second than 8,192), and the budget bounds the attention's
memory on long texts."""
GPU_TOKENS_PER_BATCH = 32768
DEFAULT_PROMPT = "query"
"""The prompt every text is read with unless a caller names another: E5's prompt for
classification and symmetric similarity."""
SORT_CHUNK = 4096
"""Texts tokenised and length-sorted together; bounds the memory held by token ids."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_count(threads: int | None = None) -> int:
    """CPU threads for inference: ``threads``, else ``OMP_NUM_THREADS`` when set, else every core
    this process may use; never more than those cores."""
    cores = available_cores()
    if threads is None:
        try:
            threads = int(os.environ.get("OMP_NUM_THREADS", ""))
        except ValueError:
            threads = cores
    return max(1, min(threads, cores))


def cuda_available() -> bool:
    """Whether torch sees a CUDA (or ROCm) GPU; torch is imported only where a GPU driver shows."""
    if "torch" not in sys.modules:
        devices = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/proc/driver/nvidia/version")
        if not any(os.path.exists(p) for p in devices) and shutil.which("nvidia-smi") is None:
            return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def local_encoder_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A local directory for an encoder: the path itself, the converted cache copy of E5 (see
    :func:`.source.resolve_encoder`), or a Hub snapshot for a connected user."""

    resolved = resolve_encoder(name_or_path)
    if Path(resolved).is_dir():
        return Path(resolved)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(resolved, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as exc:  # offline, unknown repository, ...: one message saying what to do
        raise EncoderLoadError(
            f"cannot get the encoder {resolved!r}: {exc}\nPass a local directory holding config.json, "
            "tokenizer.json and model.safetensors, or build the default one with `disinfo-clf encoder build`."
        ) from exc


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' weight-loading progress bars only on a terminal."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    if shown and not sys.stderr.isatty():
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise EncoderLoadError(f"{path}: unreadable JSON ({exc}); restore or rebuild the encoder directory") from None
    return data if isinstance(data, dict) else {}


def encoder_max_length(directory: Path) -> int:
    """Token limit of an encoder: sentence-transformers' ``max_seq_length``, else the tokenizer's
    ``model_max_length``, capped by the model's position embeddings."""
    config = _read_json(directory / "config.json")
    positions = int(config.get("max_position_embeddings") or 512)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # positions start after the padding index
    limit = _read_json(directory / "sentence_bert_config.json").get("max_seq_length")
    if not limit:
        limit = _read_json(directory / "tokenizer_config.json").get("model_max_length")
    if not isinstance(limit, (int, float)) or limit <= 0 or limit > 1_000_000:
        limit = positions
    return int(min(limit, positions))


def load_tokenizer(directory: Path, max_length: int) -> "tokenizers.Tokenizer":
    """The directory's fast tokenizer, truncating at ``max_length`` tokens (special tokens
    included), never padding."""
    from tokenizers import Tokenizer

    path = directory / "tokenizer.json"
    if path.is_file():
        tokenizer = Tokenizer.from_file(str(path))
    else:  # a slow-only checkpoint: let transformers convert it once
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False).backend_tokenizer
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def _pad_id(directory: Path, tokenizer: "tokenizers.Tokenizer") -> int:
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        token = _read_json(directory / name).get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and tokenizer.token_to_id(token) is not None:
            return int(tokenizer.token_to_id(token))
    return 0


class Encoder:
    """Embeds texts with one encoder; subclasses supply :meth:`_forward` for a padded batch.

    Attributes: :attr:`dim` (embedding width), :attr:`max_length` (token limit, special tokens
    included; longer input is truncated, so window long texts first), :attr:`tokenizer` (the
    ``tokenizers.Tokenizer`` in use), :attr:`threads`, :attr:`tokens_per_batch`, :attr:`backend`,
    :attr:`device`, :attr:`name_or_path`, :attr:`directory` and :attr:`fingerprint`.
    """

    backend = "base"

    def __init__(self, name_or_path: str, directory: Path, *, device: str = "cpu", threads: int | None = None,
                 tokens_per_batch: int | None = None) -> None:
        self.name_or_path = name_or_path
        self.directory = directory
        self.device = device
        self.threads = thread_count(threads)
        if tokens_per_batch is None:
            tokens_per_batch = CPU_TOKENS_PER_THREAD * self.threads if device == "cpu" else GPU_TOKENS_PER_BATCH
        if tokens_per_batch < 1:
            raise ValueError(f"tokens_per_batch must be at least 1, got {tokens_per_batch}")
        self.tokens_per_batch = int(tokens_per_batch)
        self.max_length = encoder_max_length(directory)
        self.tokenizer = load_tokenizer(directory, self.max_length)
        """The ``tokenizers.Tokenizer`` in use: truncates at :attr:`max_length`, adds special tokens."""
        self.pad_id = _pad_id(directory, self.tokenizer)
        config = _read_json(directory / "config.json")
        if "hidden_size" not in config:
            raise EncoderLoadError(
                f"{directory / 'config.json'}: no hidden_size; is this a transformers model directory?")
        self.dim = int(config["hidden_size"])
        st_config = _read_json(directory / "config_sentence_transformers.json")
        prompts = st_config.get("prompts")
        self.prompts: dict[str, str] = {k: v for k, v in (prompts or {}).items()
                                        if isinstance(k, str) and isinstance(v, str)}
        """Named prefixes from the directory's ``config_sentence_transformers.json`` (E5: ``query``
        and ``passage``); empty when it names none."""

    def prompt(self, name: str | None = DEFAULT_PROMPT) -> str:
        """The prefix of the prompt called ``name``; ``""`` when the encoder has no such prompt
        (an encoder trained without prompts reads texts as they are)."""
        return self.prompts.get(name, "") if name is not None else ""

    def resolve_prefix(self, prefix: str | None = None, prompt_name: str | None = DEFAULT_PROMPT) -> str:
        """``prefix`` when given, else the prefix of the prompt called ``prompt_name``."""
        return self.prompt(prompt_name) if prefix is None else prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name_or_path!r}, backend={self.backend!r}, device={self.device!r})"

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the weights file (``model.safetensors``), for checks that an index or a model
        was built with these weights."""

        return weights_sha256(self.directory)

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Pooled, L2-normalised float32 embeddings of one padded int64 batch."""
        raise NotImplementedError

    def token_lengths(self, texts: Sequence[str], *, prefix: str | None = None,
                      prompt_name: str | None = DEFAULT_PROMPT) -> np.ndarray:
        """Tokens of each prefixed text after truncation (special tokens included); the prefix as
        in :meth:`embed`."""
        prefix = self.resolve_prefix(prefix, prompt_name)
        return np.fromiter((len(e.ids) for e in self._encode([prefix + t for t in texts])), np.int64, len(texts))

    def _encode(self, texts: list[str]) -> list[Any]:
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return encode(texts, add_special_tokens=True)

    batch_independent = True
    """Whether a text's embedding is the same whatever else shares its batch. Dynamic int8
    quantization scales activations per batch tensor, so there each text runs alone: its scores then
    never depend on its neighbours (a resumed run reproduces an uninterrupted one byte for byte)."""

    parallel_runs = 1
    """Batches run at once, each on one thread (the int8 backend's one-text batches are too small
    to share between threads, so its cores each take a text)."""

    def _batches(self, lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
        """Row indices of each batch, longest texts first, rows times width within the token budget."""
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            rows = max(1, min(batch_size, self.tokens_per_batch // max(width, 1))) if self.batch_independent else 1
            yield order[start:start + rows]
            start += rows

    def embed(self, texts: Sequence[str], *, prefix: str | None = None, prompt_name: str | None = DEFAULT_PROMPT,
              batch_size: int = 64, show_progress_bar: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts``, float32, shape ``(len(texts), dim)``, rows L2-normalised, in
        input order. ``prefix`` is put before every text; without one, the encoder's prompt called
        ``prompt_name`` (:attr:`prompts`; E5's ``query`` prompt, ``"query: "``, for symmetric tasks).
        ``batch_size`` caps the rows of a batch; long texts get fewer rows (a token budget).
        Text beyond :attr:`max_length` tokens is cut off. A text gets the same embedding whatever
        it is batched with (the int8 backend runs each text alone, :attr:`batch_independent`)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list: embed([text])")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str; pass text strings only")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        prefix = self.resolve_prefix(prefix, prompt_name)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        from tqdm.auto import tqdm

        disable = None if show_progress_bar is None else not show_progress_bar
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=disable) as bar:
            for chunk_start in range(0, len(texts), SORT_CHUNK):
                chunk = texts[chunk_start:chunk_start + SORT_CHUNK]
                ids = [e.ids for e in self._encode([prefix + t for t in chunk])]
                lengths = np.fromiter(map(len, ids), np.int64, len(ids))
                for rows, vectors in self._run(self._padded(ids, lengths, batch_size)):
                    out[chunk_start + rows] = vectors
                    bar.update(len(rows))
        return out

    def _padded(self, ids: list[list[int]], lengths: np.ndarray,
                batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(rows, input_ids, attention_mask)`` of each batch, padded to its longest text."""
        for rows in self._batches(lengths, batch_size):
            width = int(lengths[rows[0]])
            batch = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                batch[i, :lengths[row]] = ids[row]
                mask[i, :lengths[row]] = 1
            yield rows, batch, mask

    def _run(self, batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(rows, embeddings)`` of each batch, in order; :attr:`parallel_runs` at a time."""
        if self.parallel_runs <= 1:
            for rows, batch, mask in batches:
                yield rows, self._forward(batch, mask)
            return
        from concurrent.futures import Future, ThreadPoolExecutor

        pending: deque[tuple[np.ndarray, Future[np.ndarray]]] = deque()
        with ThreadPoolExecutor(self.parallel_runs, thread_name_prefix="embed") as pool:
            for rows, batch, mask in batches:
                pending.append((rows, pool.submit(self._forward, batch, mask)))
                if len(pending) >= 4 * self.parallel_runs:  # bounded look-ahead: memory stays flat
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
