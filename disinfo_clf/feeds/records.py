"""One item to score (:class:`Record`), and how a JSON object or CSV row becomes one: which
fields hold the id and the text, and what is wrong when they do not hold text."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..text.textio import find_surrogate

__all__ = ["ID_FIELDS", "TEXT_FIELDS", "TITLE_FIELD", "InputError", "Record", "from_mapping", "join_title"]

TEXT_FIELDS = ("text", "content", "body", "summary")
TITLE_FIELD = "title"
ID_FIELDS = ("id", "guid", "url", "link")


class InputError(Exception):
    """An input that cannot be read at all (missing, unreadable, unknown format); names the file."""


@dataclass
class Record:
    """One item to score; ``error`` says why it cannot be scored (then ``text`` is ``None``)."""

    id: str
    text: str | None
    source: str
    line: int | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """The item as read (JSON object, CSV row, feed entry metadata)."""
    warning: str | None = None
    """A problem that did not stop reading, e.g. text that was not valid UTF-8; alone (no text, no
    error) it says why the entry was skipped."""

    @property
    def skipped(self) -> bool:
        """Whether the entry was skipped on purpose (neither text nor error; ``warning`` says why)."""
        return self.text is None and self.error is None


def from_mapping(item: Any, source: str, line: int, text_field: str | None, id_field: str | None,
                 warning: str | None) -> Record:
    """The record of a JSON object (or CSV row as a dict) read at ``line`` of ``source``.

    The id is ``id_field`` (else the first of :data:`ID_FIELDS` that holds a string or a finite
    number; else ``source:line``); the text is ``text_field`` (else ``title. body`` with the body
    from the first non-blank of :data:`TEXT_FIELDS`). A missing text field, a value that is not
    text (a number, ``true``, ``NaN``, a list) or a lone surrogate gives an error record.
    """
    fallback_id = f"{source}:{line}"
    if not isinstance(item, Mapping):
        error = (f"line {line}: expected a JSON object, got {_json_type(item)}; "
                 'write each record as an object, e.g. {"id": "1", "text": "..."}')
        return Record(fallback_id, None, source, line, error, warning=warning)
    fields = dict(item)
    ids = [id_field] if id_field else ID_FIELDS
    record_id, bad_id = fallback_id, None
    for key in ids:
        value = item.get(key)
        if isinstance(value, str) and value and find_surrogate(value) is not None:
            bad_id = key
        elif (isinstance(value, str) and value) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                    and math.isfinite(value)):
            record_id = str(value)
            break
    record = Record(record_id, None, source, line, fields=fields, warning=warning)
    try:
        if bad_id is not None and record_id == fallback_id:
            raise TypeError(_surrogate_message(bad_id, item[bad_id]))
        if text_field:
            if text_field not in item:
                record.error = (f"line {line}: no field {text_field!r} (fields: {', '.join(map(str, item))}); "
                                "pass --text-field to name the field that holds the text")
                return record
            text = _as_text(item[text_field], text_field)
        else:
            present = [k for k in (*TEXT_FIELDS, TITLE_FIELD) if k in item]
            if not present:
                record.error = (f"line {line}: no text field (looked for {', '.join((*TEXT_FIELDS, TITLE_FIELD))}; "
                                f"fields: {', '.join(map(str, item)) or 'none'}); pass --text-field to name the "
                                "field that holds the text")
                return record
            body = next((_as_text(item[k], k) for k in TEXT_FIELDS if _as_text(item.get(k), k).strip()), "")
            text = join_title(_as_text(item.get(TITLE_FIELD), TITLE_FIELD), body)
    except TypeError as exc:
        record.error = f"line {line}: {exc}"
        return record
    record.text, record.error = (text.strip(), None) if text.strip() else (None, "empty text")
    return record


def _json_type(value: Any) -> str:
    """What a JSON value is, in words (``the boolean true``, ``the number 42``, ``NaN``, ``a list``)."""
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # NaN, Infinity, -Infinity
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return {str: "a string", list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _as_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if find_surrogate(value) is not None:
            raise TypeError(_surrogate_message(name, value))
        return value
    if isinstance(value, (bool, int, float)):
        raise TypeError(f"field {name!r} holds {_json_type(value)}, not text; write the text as a JSON string, "
                        "or pass --text-field to name another field")
    raise TypeError(f"field {name!r} holds {_json_type(value)}, not text")


def _surrogate_message(name: str, value: str) -> str:
    at = find_surrogate(value) or 0
    return (f"field {name!r} holds a lone UTF-16 surrogate (\\u{ord(value[at]):04x} at character {at}), which is "
            "not a character; the writer split an emoji or other character in two: write it whole "
            "(e.g. \\ud83d\\ude00 together, or the character itself)")


def join_title(title: str, body: str) -> str:
    """``title. body`` (no extra full stop after a title that ends in punctuation)."""
    title, body = title.strip(), body.strip()
    if not title or not body or body.startswith(title):
        return body or title
    return f"{title} {body}" if title[-1] in ".!?:;…" else f"{title}. {body}"
