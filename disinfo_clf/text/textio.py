"""Turning bytes into text: UTF-8 with a guessed legacy fallback, line endings, HTML to text.

This module imports nothing from the rest of the package, so the readers of every stage
(:mod:`disinfo_clf.data`, :mod:`disinfo_clf.feeds`) can share it.
"""
from __future__ import annotations

import codecs
import io
import logging
import re
from collections import deque
from collections.abc import Iterator
from html import unescape
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger(__name__)

# Candidates for text that is not UTF-8: the usual single-byte encodings of European news sites.
_LEGACY_ENCODINGS = ["cp1252", "cp1251", "cp1250", "cp1257", "cp1253", "cp1254", "koi8_r", "iso8859_15"]
_SNIFF_BYTES = 64 * 1024
_NEWLINES = re.compile(r"\r\n?")


def normalise_newlines(text: str) -> str:
    """``text`` with Windows (``\\r\\n``) and old-Mac (``\\r``) line endings turned into ``\\n``."""
    return _NEWLINES.sub("\n", text) if "\r" in text else text


# The Latin-script code pages that the statistical guesser confuses on short texts (French read as
# cp1250 turns "à" into "ŕ"), with the accented letters that are common in their languages.
_LATIN_LETTERS = {
    "cp1252": "àâäçèéêëîïôöùûüÿñáíóúãõßœæøåÀÂÄÇÈÉÊËÎÏÔÖÙÛÜÑÁÍÓÚÃÕŒÆØÅ",
    "cp1250": "áäčďéěíňóôöőřšťúůüűýžąćęłńśźżăâîşţÁÄČĎÉĚÍŇÓÔÖŐŘŠŤÚŮÜŰÝŽĄĆĘŁŃŚŹŻĂÂÎŞŢ",
    "cp1257": "ąčęėįšųūžāēģīķļņõäöüĄČĘĖĮŠŲŪŽĀĒĢĪĶĻŅÕÄÖÜ",
}


def guess_encoding(data: bytes) -> str:
    """The most likely legacy encoding of bytes that are not UTF-8 (``cp1252`` when unsure).

    Between the Latin code pages (cp1252, cp1250, cp1257) the text decides: the decoding with
    more of its languages' common accented letters and fewer odd characters (``³`` inside a word)
    wins, and a tie goes to cp1252, so Western European text is not read as Central European.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=_LEGACY_ENCODINGS).best()
    encoding = best.encoding if best is not None and best.encoding else "cp1252"
    if encoding not in _LATIN_LETTERS:
        return encoding
    scores = {enc: _latin_score(data, enc) for enc in _LATIN_LETTERS}
    return max(scores, key=lambda enc: (scores[enc], enc == "cp1252", enc == encoding))


def _latin_score(data: bytes, encoding: str) -> float:
    """How plausible ``data`` decoded as ``encoding`` reads: +1 per common accented letter, -1 per
    rare letter, -2 per symbol inside a word; minus infinity when it does not decode."""
    try:
        text = data[:_SNIFF_BYTES].decode(encoding)
    except UnicodeDecodeError:
        return float("-inf")
    common, score = _LATIN_LETTERS[encoding], 0.0
    for i, char in enumerate(text):
        if char.isascii():
            continue
        if char in common:
            score += 1
        elif char.isalpha():
            score -= 1
        elif 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
            score -= 2
    return score


def decodes(data: bytes, encoding: str) -> bool:
    """Whether ``data`` is valid in ``encoding``."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


_BINARY_SIGNATURES = [
    (b"\x1f\x8b", "gzip-compressed", "decompress it first, e.g. `gunzip -k {path}`"),
    (b"%PDF-", "a PDF document", "extract its text first, e.g. `pdftotext {path} {path}.txt`"),
    (b"PK\x03\x04", "a ZIP archive (or a .docx/.xlsx/.odt document)", "unpack it or export its text first"),
    (b"BZh", "bzip2-compressed", "decompress it first, e.g. `bunzip2 -k {path}`"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first, e.g. `unxz -k {path}`"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first, e.g. `unzstd {path}`"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "unpack it first"),
    (b"\x89PNG", "a PNG image", "score text, not images"),
    (b"\xff\xd8\xff", "a JPEG image", "score text, not images"),
    (b"GIF8", "a GIF image", "score text, not images"),
]
_SURROGATE = re.compile("[\ud800-\udfff]")


def binary_kind(head: bytes) -> tuple[str, str] | None:
    """``(what it is, how to fix it)`` when the first bytes of a file are not text, else ``None``.

    The fix may hold ``{path}``. Recognises compressed files, archives, PDFs and images by their
    signature, and other binary data by NUL bytes (UTF-16 with a byte-order mark is text).
    """
    for signature, what, fix in _BINARY_SIGNATURES:
        if head.startswith(signature):
            return what, fix
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" not in head:
        return None
    return ("binary data (NUL bytes), or UTF-16 text without a byte-order mark",
            "if it is UTF-16 text, convert it, e.g. `iconv -f UTF-16LE -t UTF-8 {path} > {path}.utf8`")


def find_surrogate(text: str) -> int | None:
    """The index of the first lone UTF-16 surrogate in ``text`` (not a character: it cannot be written as UTF-8)."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


def printable_path(path: str | PathLike[str]) -> str:
    """``path`` (or any text) as text that can be written as UTF-8.

    Undecodable bytes of a file name (held as surrogate escapes) become ``\\xNN``; other lone
    surrogates become ``\\uNNNN``.
    """
    text = str(path)
    if find_surrogate(text) is None:
        return text
    if all("\udc80" <= c <= "\udcff" for c in _SURROGATE.findall(text)):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Text of ``data`` (UTF-8, with or without BOM, else a guessed encoding) and a warning if guessed."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError as exc:
            return data.decode("utf-16", errors="replace"), f"invalid UTF-16 ({exc.reason}); undecodable bytes replaced"
    if decodes(data, "utf-8-sig"):
        return data.decode("utf-8-sig"), None
    encoding = guess_encoding(data)
    return data.decode(encoding, errors="replace"), f"not valid UTF-8; decoded as {encoding}"


def read_utf8(path: str | PathLike[str]) -> str:
    """The text of a UTF-8 file (a BOM is dropped); a ValueError naming the file, the line and a fix otherwise."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(not_utf8_message(path, data, exc.start)) from exc


def not_utf8_message(path: str | PathLike[str], data: bytes, offset: int) -> str:
    """Why ``data`` (the bytes of ``path``) cannot be read, with an ``iconv`` command that converts it."""
    line = data.count(b"\n", 0, offset) + 1
    sample = data[max(0, offset - _SNIFF_BYTES // 2): offset + _SNIFF_BYTES // 2]
    encoding = codecs.lookup(guess_encoding(sample)).name.upper()
    return (f"{path} is not UTF-8 text (line {line}: undecodable byte {data[offset]:#04x}); convert it, for example "
            f"with `iconv -f {encoding} -t UTF-8 {path} > {path}.utf8` ({encoding} is a guess: check the result)")


def byte_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Byte lines of ``stream``, each ending in ``\\n`` (``\\r\\n`` and a lone ``\\r`` end a line too).

    UTF-16 (with a BOM) is re-encoded as UTF-8. A file with only ``\\r`` line endings is held in
    memory whole while it is split.
    """
    start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        text = io.TextIOWrapper(stream, encoding="utf-16", errors="replace", newline="")  # type: ignore[arg-type]
        lines: Iterator[bytes] = (line.encode("utf-8") for line in text)
    else:
        lines = iter(stream)
    for raw in lines:
        if b"\r" not in raw:
            yield raw
            continue
        body = raw[:-2] + b"\n" if raw.endswith(b"\r\n") else raw
        *ended, last = body.split(b"\r")
        yield from (part + b"\n" for part in ended)
        if last:
            yield last


class DecodedLines:
    """Decoded lines (endings kept) of a byte-line stream, counting line numbers.

    UTF-8 first; a line that is not UTF-8 is decoded with an encoding guessed once per input from
    that line and the non-UTF-8 lines in the next 64 KiB, and :meth:`take_warning` reports it.
    """

    def __init__(self, raw_lines: Iterator[bytes], source: str) -> None:
        self._raw, self._source = raw_lines, source
        self._fallback: str | None = None
        self._warning: str | None = None
        self.lineno = 0

    def take_warning(self) -> str | None:
        """The decoding warning of the lines read since the last call, if any."""
        warning, self._warning = self._warning, None
        return warning

    def __iter__(self) -> Iterator[str]:
        pending: deque[bytes] = deque()
        while True:
            raw = pending.popleft() if pending else next(self._raw, None)
            if raw is None:
                return
            self.lineno += 1
            if self.lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
                continue
            except UnicodeDecodeError:
                pass
            if self._fallback is None:
                sample, size = [raw], len(raw)
                while size < _SNIFF_BYTES and (ahead := next(self._raw, None)) is not None:
                    pending.append(ahead)
                    size += len(ahead)
                    if not decodes(ahead, "utf-8"):
                        sample.append(ahead)
                self._fallback = guess_encoding(b"".join(sample))
                logger.warning("%s: line %d is not valid UTF-8; decoding such lines as %s",
                               self._source, self.lineno, self._fallback)
            self._warning = f"not valid UTF-8; decoded as {self._fallback}"
            yield raw.decode(self._fallback, errors="replace")


_trafilatura: Any = None


def html_to_text(html: str) -> str:
    """The article text of an HTML page or snippet (trafilatura, else the text without tags)."""
    global _trafilatura
    if _trafilatura is None:
        try:
            import trafilatura
            _trafilatura = trafilatura
        except ImportError as exc:  # e.g. lxml >= 5.2 without the lxml_html_clean package
            logger.warning("trafilatura cannot be imported (%s); HTML is reduced to its text without tags", exc)
            _trafilatura = False
    extracted = None
    if _trafilatura:
        try:
            extracted = _trafilatura.extract(html, include_comments=False)
        except Exception as exc:  # trafilatura fails on odd markup; the tag-strip below still works
            logger.debug("trafilatura failed (%s); stripping tags instead", exc)
    return (extracted or strip_tags(html)).strip()


_SKIPPED_HTML = frozenset({"script", "style", "noscript", "template", "head", "svg"})
"""Elements whose content is not text a reader sees."""
_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "article", "section",
                         "blockquote", "header", "footer", "ul", "ol", "table", "pre"})
"""Elements that start a new line."""


_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)")
_RAW_TEXT = ("script", "style")
"""Elements whose content is not markup: it runs to their closing tag."""


def strip_tags(html: str) -> str:
    """The text of ``html`` without tags, comments, scripts or styles, one line per block element.

    One pass, each character read a bounded number of times, so hostile markup (thousands of
    unclosed ``<script>`` or ``<!--``) costs linear time; an unclosed tag, comment or script ends the text."""
    parts: list[str] = []
    open_skipped = dict.fromkeys(_SKIPPED_HTML, 0)  # counts, not a stack: no rescans on hostile nesting
    skipping = 0
    pos, end = 0, len(html)
    while pos < end:
        lt = html.find("<", pos)
        if lt < 0:
            lt = end
        if not skipping:
            parts.append(html[pos:lt])
        if lt >= end:
            break
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            pos = end if close < 0 else close + 3
            continue
        tag = _TAG_NAME.match(html, lt)
        if tag is None:
            if html.startswith(("<!", "<?"), lt):  # a declaration or processing instruction
                close = html.find(">", lt)
                pos = end if close < 0 else close + 1
            else:  # a lone "<" is text
                if not skipping:
                    parts.append("<")
                pos = lt + 1
            continue
        close = html.find(">", tag.end())
        if close < 0:
            break
        pos, closing, name = close + 1, bool(tag.group(1)), tag.group(2).lower()
        if name == "body" and open_skipped["head"]:  # an unclosed <head> ends where the body starts
            skipping, open_skipped["head"] = skipping - open_skipped["head"], 0
        if not closing and name in _RAW_TEXT and html[close - 1] != "/":
            raw_end = re.compile(rf"</{name}\s*>", re.I).search(html, pos)
            pos = end if raw_end is None else raw_end.end()
        elif name in _SKIPPED_HTML and html[close - 1] != "/":
            step = 1 if not closing else -1 if open_skipped[name] else 0
            open_skipped[name] += step
            skipping += step
        elif name in _BLOCK_TAGS and not skipping:
            parts.append("\n")
    lines = (" ".join(line.split()) for line in unescape("".join(parts)).splitlines())
    return "\n".join(line for line in lines if line)
