"""RSS and Atom feeds: one record per entry, title joined to the text of its content or summary."""
from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Mapping
from html import unescape
from typing import Any

from .records import Record, join_title
from ..text.textio import find_surrogate, html_to_text, strip_tags

__all__ = ["read_feed"]

logger = logging.getLogger(__name__)

# Numeric character references to UTF-16 surrogates: pairs are joined into the character they
# encode; a lone one becomes a noncharacter that marks its entry as an error.
_SURROGATE_REF = re.compile(rb"&#(?:0*(5[5-7]\d{3})|[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2}));")
_LONE_MARK = "\ufdd0"


def _fix_surrogate_refs(data: bytes) -> bytes:
    if b"&#" not in data:
        return data
    refs = list(_SURROGATE_REF.finditer(data))
    codes = [int(m.group(1)) if m.group(1) else int(m.group(2), 16) for m in refs]
    if not any(0xD800 <= c <= 0xDFFF for c in codes):
        return data
    out, last, i = [], 0, 0
    while i < len(refs):
        match, code = refs[i], codes[i]
        out.append(data[last:match.start()])
        following = refs[i + 1] if i + 1 < len(refs) else None
        if (0xD800 <= code <= 0xDBFF and following is not None and following.start() == match.end()
                and 0xDC00 <= codes[i + 1] <= 0xDFFF):
            out.append(b"&#%d;" % (0x10000 + ((code - 0xD800) << 10) + (codes[i + 1] - 0xDC00)))
            last, i = following.end(), i + 2
            continue
        out.append(b"&#xFDD0;" if 0xD800 <= code <= 0xDFFF else match.group())
        last, i = match.end(), i + 1
    out.append(data[last:])
    return b"".join(out)


def read_feed(data: bytes, source: str) -> Iterator[Record]:
    """The entries of the feed in ``data`` (an error record naming ``source`` if it is not a feed)."""
    import feedparser

    try:
        # A stream (not bytes or a string) so that feedparser never treats the input as a URL to fetch.
        parsed = feedparser.parse(io.BytesIO(_fix_surrogate_refs(data)), resolve_relative_uris=False, sanitize_html=True)
    except Exception as exc:  # feedparser gives up on some malformed input; that must cost this file only
        yield Record(source, None, source, None, f"{source}: not a readable RSS/Atom feed ({type(exc).__name__}: {exc})")
        return
    if not parsed.entries:
        if parsed.get("bozo") or not parsed.get("version"):
            reason = parsed.get("bozo_exception") or "no RSS or Atom elements found"
            yield Record(source, None, source, None, f"{source}: not a readable RSS/Atom feed ({reason})")
        else:
            logger.warning("%s: the feed has no entries", source)
        return
    if parsed.get("bozo"):
        logger.warning("%s: the feed is not well-formed (%s); reading its %d entries anyway",
                       source, parsed.get("bozo_exception"), len(parsed.entries))
    for index, entry in enumerate(parsed.entries, 1):
        yield _feed_entry(entry, source, index)


def _feed_entry(entry: Mapping[str, Any], source: str, index: int) -> Record:
    contents = [c.get("value", "") for c in entry.get("content", [])]
    body = max(contents, key=len) if contents else entry.get("summary", "")
    title = strip_tags(entry.get("title", ""))
    text = join_title(title, html_to_text(body) if "<" in body else unescape(body))
    fields = {k: entry.get(k) for k in ("title", "link", "published", "updated", "author") if entry.get(k)}
    record_id = entry.get("id") or entry.get("link") or ""
    if _LONE_MARK in record_id or find_surrogate(record_id) is not None:
        record_id = ""
    record = Record(record_id or f"{source}:{index}", text or None, source, index, None if text else "empty text", fields)
    if _LONE_MARK in text or find_surrogate(text) is not None or _LONE_MARK in (entry.get("id") or ""):
        where = "id" if _LONE_MARK in (entry.get("id") or "") else "title or text"
        record.text, record.error = None, (
            f"entry {index}: its {where} holds a character reference to a lone UTF-16 surrogate (such as &#55357;), "
            "which is not a character; the feed's writer split an emoji in two: write it as one reference "
            "(e.g. &#128512;)")
    return record
