"""Readers: every input item becomes exactly one record, with errors kept as records."""
from __future__ import annotations

import io
import json
import sys
import tomllib
from pathlib import Path

import pytest

from disinfo_clf.feeds import readers as feeds
from disinfo_clf.feeds.readers import InputError, html_to_text, read_input, read_records

DATA = Path(__file__).parent / "data" / "feeds"


def _ids(records: list[feeds.Record]) -> list[str]:
    return [r.id for r in records]


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def test_jsonl_keeps_malformed_and_empty_lines_as_error_records() -> None:
    source = str(DATA / "articles.jsonl")
    records = list(read_records([source]))
    assert _ids(records) == ["a1", "a2", "a3", f"{source}:4", "https://example.org/story", f"{source}:6", "5", "a1#2"]
    by_id = {r.id: r for r in records}
    assert by_id["a1"].text == "NATO moves east. Officials say NATO is preparing an attack."
    assert by_id["a3"].error == "empty text" and by_id["a3"].text is None
    assert by_id[f"{source}:4"].error.startswith("line 4: invalid JSON: ")
    assert by_id[f"{source}:4"].line == 4 and by_id[f"{source}:4"].text is None
    assert by_id[f"{source}:6"].error.startswith("line 6: expected a JSON object, got a list; write each record as an object")
    assert by_id["5"].text == "Numeric id, summary field." and by_id["5"].line == 8
    assert by_id["a1#2"].text.startswith("Duplicate id")


def test_text_and_id_fields_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text('{"key": "k1", "msg": "hello", "text": "ignored"}\n{"key": "k2"}\n{"key": "k3", "msg": ["a"]}\n')
    records = list(read_records([path], text_field="msg", id_field="key"))
    assert _ids(records) == ["k1", "k2", "k3"]
    assert records[0].text == "hello"
    assert records[1].error.startswith("line 2: no field 'msg' (fields: key); pass --text-field")
    assert records[2].error == "line 3: field 'msg' holds a list, not text"


def test_repeated_ids_get_deterministic_suffixes(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": "t"}) + "\n" for i in ["x", "x", "x#2", "x", "y"]))
    assert _ids(read_records([path])) == ["x", "x#2", "x#2#2", "x#3", "y"]
    assert _ids(read_records([path, path]))[5:] == ["x#4", "x#5", "x#2#3", "x#6", "y#2"]


def test_csv_quoted_multiline_cells_and_title_only_rows() -> None:
    records = list(read_records([DATA / "articles.csv"]))
    assert _ids(records) == ["c1", "c2", "c3", "c4"]
    assert [r.line for r in records] == [2, 3, 5, 6]
    assert records[0].text == "Sanctions report. Sanctions hurt Europe more than Russia, NATO admits."
    assert records[1].text == "A text over\ntwo lines, quoted."
    assert records[2].text == "Only a title"
    assert records[3].error == "empty text"
    assert records[0].fields["published"] == "2024-01-02"


def test_title_is_joined_once() -> None:
    assert feeds.join_title("Breaking!", "Body.") == "Breaking! Body."
    assert feeds.join_title("Headline", "Headline and the first sentence.") == "Headline and the first sentence."
    assert feeds.join_title("", "Body.") == "Body." and feeds.join_title("Only", "") == "Only"


def test_csv_without_a_text_column_is_fatal_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"numbers\.csv: no text column.*--text-field"):
        list(read_records([path]))


def test_cp1252_file_is_decoded_with_a_warning() -> None:
    records = list(read_records([DATA / "legacy_cp1252.csv"]))
    assert records[0].text == "Le président a déclaré que l’OTAN menaçait la sécurité européenne."
    assert records[1].text == "Café crème — naïve façade."
    assert all("not valid UTF-8" in (r.warning or "") for r in records)


def test_utf8_bom_and_utf16_are_read(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes("text,id\nprésident,1\n".encode("utf-8-sig"))
    utf16 = tmp_path / "u16.jsonl"
    utf16.write_bytes('{"id": "u", "text": "Привет"}\n'.encode("utf-16"))
    records = list(read_records([bom, utf16]))
    assert [(r.id, r.text, r.warning) for r in records] == [("1", "président", None), ("u", "Привет", None)]


def test_rss_and_atom_items_use_title_and_stripped_html() -> None:
    records = list(read_records([DATA / "feed.rss", DATA / "feed.atom"]))
    assert _ids(records) == ["https://news.example.org/1", "https://news.example.org/2",
                             "https://news.example.org/empty", "urn:example:1", "urn:example:2"]
    assert records[0].text == "NATO exercise near the border. State media claim the exercise is an attack rehearsal."
    assert records[2].error == "empty text"
    assert records[3].text == "Debunk: the Nazi claim is false. Fact-checkers found no evidence."
    assert records[4].text == "Second entry. Just a summary."
    assert records[0].fields["link"] == "https://news.example.org/1"


def test_broken_feed_is_one_error_record_naming_the_file() -> None:
    records = list(read_records([DATA / "broken.xml"]))
    assert len(records) == 1
    assert records[0].text is None
    assert records[0].error.startswith(f"{DATA / 'broken.xml'}: not a readable RSS/Atom feed")


def test_feeds_are_never_fetched_from_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser tried to fetch a URL")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    path = tmp_path / "url.rss"
    path.write_text("https://news.example.org/feed.xml")
    [record] = read_records([path])
    assert "not a readable RSS/Atom feed" in record.error


def test_folder_is_read_recursively_in_sorted_order() -> None:
    folder = DATA / "folder"
    records = list(read_records([folder]))
    assert _ids(records) == [str(folder / "a.txt"), str(folder / "c_empty.txt"), str(folder / "sub" / "b.html")]
    assert records[0].text == "Plain text article about NATO.\nSecond line."
    assert records[1].error == "empty text"
    html = records[2].text
    assert "Ukraine is run by Nazis" in html and "shown the claim to be false" in html
    assert "<" not in html and "alert(1)" not in html and "color:red" not in html


def test_html_snippets_fall_back_to_tag_stripping() -> None:
    assert html_to_text("<p>Short <b>bold</b> &amp; plain.</p>") == "Short bold & plain."
    assert html_to_text("<div>One</div><div>Two<br>Three</div><script>x()</script>") == "One\nTwo\nThree"


def test_missing_input_is_fatal_and_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        list(read_records([DATA / "articles.jsonl", tmp_path / "nope.jsonl"]))
    with pytest.raises(InputError, match="unknown input format 'yaml'"):
        list(read_input(DATA / "articles.jsonl", input_format="yaml"))


def test_format_override_and_sniffing_of_unknown_extensions(tmp_path: Path) -> None:
    jsonl = tmp_path / "export.dat"
    jsonl.write_text('{"id": "j", "text": "json"}\n')
    plain = tmp_path / "notes.log"
    plain.write_text("first line\n\nsecond, with a comma\n")
    assert [(r.id, r.text) for r in read_records([jsonl])] == [("j", "json")]
    assert [(r.id, r.text) for r in read_records([plain])] == [(f"{plain}:1", "first line"),
                                                               (f"{plain}:3", "second, with a comma")]
    as_lines = list(read_records([DATA / "articles.csv"], input_format="lines"))
    assert len(as_lines) == 6 and as_lines[0].text == "id,title,text,published"


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"id": "p", "text": "one"}, {"text": "two"}], indent=1))
    assert [(r.id, r.text) for r in read_records([path])] == [("p", "one"), (f"{path}:2", "two")]


@pytest.mark.parametrize(("data", "expected"), [
    (b'\n{"id": "s1", "text": "from a pipe"}\nnot json\n', [("s1", "from a pipe", None), ("stdin:3", None, "line 3: invalid JSON: Expecting value (column 1)")]),
    (b"id,text\ns2,csv from a pipe\n", [("s2", "csv from a pipe", None)]),
    (b"just a line\nanother line\n", [("stdin:1", "just a line", None), ("stdin:2", "another line", None)]),
    (b"<!DOCTYPE html>\n<html><body><p>A piped page.</p></body></html>\n", [("stdin", "A piped page.", None)]),
    ((DATA / "feed.atom").read_bytes(), [("urn:example:1", "Debunk: the Nazi claim is false. Fact-checkers found no evidence.", None),
                                         ("urn:example:2", "Second entry. Just a summary.", None)]),
])
def test_stdin_format_is_detected_from_content(monkeypatch: pytest.MonkeyPatch, data: bytes,
                                               expected: list[tuple]) -> None:
    _stdin(monkeypatch, data)
    assert [(r.id, r.text, r.error) for r in read_records(["-"])] == expected
    assert all(r.source == "stdin" for r in read_records(["-"]))


class _CountingRaw(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self.data[self.position: self.position + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("header", [b"", b"id,text\n"])
def test_line_formats_are_streamed_not_read_whole(monkeypatch: pytest.MonkeyPatch, header: bytes) -> None:
    body = "".join(json.dumps({"id": i, "text": "t" * 100}) + "\n" for i in range(2000)) if not header else \
        "".join(f"{i},{'t' * 100}\n" for i in range(2000))
    raw = _CountingRaw(header + body.encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(raw)))
    records = read_records(["-"])
    assert next(records).id == "0"
    assert raw.position < len(raw.data) / 4
    assert sum(1 for _ in records) == 1999


def _as_tuples(records: list[feeds.Record]) -> list[tuple]:
    return [(r.id.replace("crlf", "lf"), r.text, r.error, r.line, r.fields, r.warning) for r in records]


@pytest.mark.parametrize("name", ["articles.jsonl", "articles.csv"])
@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_windows_and_old_mac_line_endings_read_like_unix_ones(tmp_path: Path, name: str, ending: bytes) -> None:
    data = (DATA / name).read_bytes()
    suffix = Path(name).suffix
    (tmp_path / f"lf{suffix}").write_bytes(data)
    (tmp_path / f"crlf{suffix}").write_bytes(data.replace(b"\n", ending))
    unix = list(read_records([tmp_path / f"lf{suffix}"]))
    other = list(read_records([tmp_path / f"crlf{suffix}"]))
    assert _as_tuples(other) == _as_tuples(unix)
    assert len(unix) > 3 and not any("\r" in (r.text or "") for r in other)


def test_old_mac_csv_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"id,text\rm1,first\rm2,\"two\rlines\"\r")
    assert [(r.id, r.text, r.line) for r in read_records(["-"])] == [("m1", "first", 2), ("m2", "two\nlines", 3)]


def test_crlf_text_file_has_unix_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"First line.\r\nSecond line.\r\n")
    [record] = read_records([path])
    assert record.text == "First line.\nSecond line."


def test_pretty_printed_json_object_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps({"id": "obj", "title": "Headline", "text": "Body.", "tags": ["a", "b"]}, indent=2))
    [record] = read_records([path])
    assert (record.id, record.text, record.error) == ("obj", "Headline. Body.", None)
    assert record.fields["tags"] == ["a", "b"]


def test_pretty_printed_json_array_of_objects(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"id": "p", "text": "one", "meta": {"x": 1}}, {"id": "q", "text": "two"}], indent=4))
    assert [(r.id, r.text) for r in read_records([path])] == [("p", "one"), ("q", "two")]


def test_broken_pretty_printed_json_is_one_error_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "id": "x",\n  "text": "no closing brace"\n')
    [record] = read_records([path])
    assert record.text is None and record.error.startswith(f"{path}: invalid JSON: ") and "line 4" in record.error


def test_json_lines_with_a_broken_first_line_still_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a", "text": "cut off\n{"id": "b", "text": "fine"}\n')
    records = list(read_records([path]))
    assert [(r.id, r.text) for r in records] == [(f"{path}:1", None), ("b", "fine")]
    assert records[0].error.startswith("line 1: invalid JSON")


def test_encoding_guesser_is_a_declared_dependency() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(dep.startswith("charset-normalizer") for dep in pyproject["project"]["dependencies"])
