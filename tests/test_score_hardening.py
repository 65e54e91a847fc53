"""`score` on hostile inputs: every input record gives exactly one row (scored, error or skipped),
the run exits 0, a second run on the same output is refused, and a resume with changed inputs or
another model is refused."""
from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from disinfo_clf.feeds import folders
from disinfo_clf.cli import main
from disinfo_clf.feeds.readers import Record, read_records
from disinfo_clf.scoring import ScoringError, score
from disinfo_clf.scoring.sinks import manifest_path
from disinfo_clf.text.textio import guess_encoding
from fakes import FakeModel

TESTS = Path(__file__).parent
FRENCH = "Le président a déclaré à la presse que l'armée était prête à répondre à l'OTAN."
SECRET = "SECRET-PAYLOAD the NATO plan"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _kind(row: dict) -> str:
    return "error" if row["error"] else "scored" if row["narrative"] else "skipped"


@pytest.fixture()
def unreadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Paths made unreadable (chmod 000; for root, which reads them anyway, opening them is refused too)."""
    paths: list[Path] = []

    def refuse(path: object) -> None:
        if paths and os.geteuid() == 0 and str(path) in {str(p) for p in paths}:
            raise PermissionError(13, "Permission denied", str(path))

    real_open, real_scandir = os.open, os.scandir

    def fake_open(path: object, *args: object, **kwargs: object) -> int:
        refuse(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    def fake_scandir(path: object = ".") -> object:
        refuse(path)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(folders.os, "open", fake_open)
    monkeypatch.setattr(folders.os, "scandir", fake_scandir)
    yield paths
    for path in paths:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _folder(root: Path, unreadable: list[Path]) -> list[tuple[str, str, str]]:
    """A folder with every kind of bad entry; the (id, kind, text in error or warning) of its rows."""
    docs, outside = root / "docs", root / "outside"
    (docs / "sub").mkdir(parents=True)
    (docs / "locked").mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (docs / "a.txt").write_text("NATO is preparing an attack on Russia.")
    (docs / "b_out.txt").symlink_to(outside / "secret.txt")
    (docs / "c_in.txt").symlink_to("a.txt")
    (docs / "d_dangling.txt").symlink_to("nowhere.txt")
    (docs / "e_loop.txt").symlink_to("e_loop.txt")
    os.mkfifo(docs / "f_fifo.txt")
    (docs / "g_unreadable.txt").write_text("cannot be read")
    (docs / "h_gzip.txt").write_bytes(gzip.compress(b"NATO text, compressed"))
    (docs / "i_pdf.html").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (docs / "j_binary.txt").write_bytes(b"\x00\x01\x02binary\x00data")
    (docs / "k_french.txt").write_bytes(FRENCH.encode("cp1252"))
    (docs / "l_outdir").symlink_to(outside, target_is_directory=True)
    (docs / "locked" / "x.txt").write_text("in a folder that cannot be read")
    (docs / "sub" / "m.txt").write_text("A text in a subfolder about Nazis.")
    for path in (docs / "g_unreadable.txt", docs / "locked"):
        path.chmod(0)
        unreadable.append(path)
    d = str(docs)
    return [(f"{d}/a.txt", "scored", ""), (f"{d}/b_out.txt", "skipped", "outside"), (f"{d}/c_in.txt", "scored", ""),
            (f"{d}/d_dangling.txt", "error", "broken symbolic link"), (f"{d}/e_loop.txt", "error", "loop"),
            (f"{d}/f_fifo.txt", "skipped", "named pipe"), (f"{d}/g_unreadable.txt", "error", "Permission denied"),
            (f"{d}/h_gzip.txt", "error", "gzip-compressed"), (f"{d}/i_pdf.html", "error", "PDF"),
            (f"{d}/j_binary.txt", "error", "NUL bytes"), (f"{d}/k_french.txt", "scored", "decoded as cp1252"),
            (f"{d}/l_outdir", "skipped", "outside"), (f"{d}/locked", "error", "cannot read this folder"),
            (f"{d}/sub/m.txt", "scored", "")]


def _files(root: Path) -> list[tuple[Path, list[tuple[str, str, str]]]]:
    """Hostile files, each with the (id, kind, text in error or warning) of its rows."""
    made: list[tuple[Path, list[tuple[str, str, str]]]] = []

    def add(name: str, data: bytes | str, rows: list[tuple[str, str, str]]) -> None:
        path = root / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        made.append((path, [(i.replace("@", str(path)), k, t) for i, k, t in rows]))

    add("surrogates.jsonl", '{"id": "s1", "text": "NATO news"}\n{"id": "s2", "text": "half an emoji \\ud83d"}\n'
        '{"id": "s3", "text": true}\n{"id": "s4", "text": NaN}\n{"id": "s5", "headline": "no text field"}\n'
        '{"id": "s\\udc00", "text": "a broken id"}\n{"id": "s7", "text": "fine"}\n',
        [("s1", "scored", ""), ("s2", "error", "line 2: field 'text' holds a lone UTF-16 surrogate"),
         ("s3", "error", "line 3: field 'text' holds the boolean true"), ("s4", "error", "line 4: field 'text' holds NaN"),
         ("s5", "error", "line 5: no text field"), ("@:6", "error", "line 6: field 'id' holds a lone UTF-16 surrogate"),
         ("s7", "scored", "")])
    add("array_first.jsonl", '["a", "list"]\n{"id": "af2", "text": "NATO"}\n{"id": "af3", "text": "more"}\n',
        [("@:1", "error", "expected a JSON object, got a list; write each record as an object, e.g. "
                          '{"id": "1", "text": "..."} not one JSON document (line 2: Extra data), so read as JSON lines'),
         ("af2", "scored", ""),
         ("af3", "scored", "")])
    add("all_broken.jsonl", '{"id": "b1", "text": "cut\n{"id": "b2", "text": "cut\n{"id": "b3"\n',
        [("@:1", "error", "line 1: invalid JSON"), ("@:2", "error", "line 2: invalid JSON"),
         ("@:3", "error", "line 3: invalid JSON")])
    add("feed.rss", '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><guid>f1</guid><title>Half &#55357; an emoji</title><description>NATO</description></item>"
        "<item><guid>f2</guid><title>Whole &#55357;&#56832; emoji</title><description>NATO</description></item>"
        "<item><guid>f3</guid><title>Plain</title><description>Nazis</description></item></channel></rss>",
        [("f1", "error", "entry 1: its title or text holds a character reference to a lone UTF-16 surrogate"),
         ("f2", "scored", ""), ("f3", "scored", "")])
    add("unterminated.csv", 'id,text\nu1,"a quote that never closes\nu2,second row\nu3,third row\n',
        [("@:2", "error", "line 2: broken CSV quoting"), ("u2", "scored", ""), ("u3", "scored", "")])
    add("ragged.csv", "id,text,extra\nr1,too many cells,x,y\nr2\nr3,\"sloppy\" quoting,e\nr4,fine,e\n",
        [("r1", "scored", "line 2: 4 cells but the header has 3 columns"), ("r2", "error", "line 3: no text field"),
         ("r3", "scored", "line 4: sloppy CSV quoting"), ("r4", "scored", "")])
    add("semicolons.csv", "id;title;text\nsc1;Titre;Le président a parlé\nsc2;Autre;Deuxième texte\n",
        [("sc1", "scored", "separated by semicolons"), ("sc2", "scored", "")])
    add("latin1.csv", ("id,text\nl1," + FRENCH + "\n").encode("cp1252"), [("l1", "scored", "decoded as cp1252")])
    add("data.jsonl.gz", gzip.compress(b'{"id": "g1", "text": "NATO"}\n'), [("@", "error", "gzip-compressed")])
    add("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", [("@", "error", "a PDF document, not text")])
    return made


def _corpus(root: Path, unreadable: list[Path]) -> tuple[list[str], list[tuple[str, str, str]]]:
    expected = _folder(root, unreadable)
    inputs = [str(root / "docs")]
    for path, rows in _files(root):
        inputs.append(str(path))
        expected += rows
    return inputs, expected


def _check(rows: list[dict], expected: list[tuple[str, str, str]]) -> None:
    assert [r["id"] for r in rows] == [e[0] for e in expected]
    for row, (record_id, kind, text) in zip(rows, expected):
        assert _kind(row) == kind, (record_id, row)
        assert text in ((row["error"] or "") + " " + (row["warning"] or "")), (record_id, row)
        if kind == "skipped":
            assert row["warning"] and row["evidence"] is None


def test_a_corpus_of_every_hostile_input_gives_one_row_per_record_and_exits_0(
        tmp_path: Path, unreadable: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, expected = _corpus(tmp_path, unreadable)
    stdin = b'42\n{"id": "p1", "text": "NATO from a pipe"}\n"a bare string"\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin))))
    expected += [("stdin:1", "error", "expected a JSON object, got the number 42"), ("p1", "scored", ""),
                 ("stdin:3", "error", "expected a JSON object, got a string")]
    out = tmp_path / "scored.jsonl"
    assert main(["score", *inputs, "-", "-o", str(out)]) == 0  # the embedded default model
    rows = _rows(out)
    _check(rows, expected)
    assert "guessed" in rows[[r["id"] for r in rows].index("stdin:1")]["warning"]
    assert not any(SECRET in json.dumps(r) for r in rows)  # the link out of the folder was not followed
    french = next(r for r in rows if r["id"].endswith("k_french.txt"))
    assert "à" in french["evidence"]["text"] and "ŕ" not in french["evidence"]["text"]
    summary = capsys.readouterr().err
    counts = {kind: sum(1 for e in expected if e[1] == kind) for kind in ("scored", "error", "skipped")}
    assert f"records  {len(expected)}" in summary and f"errors   {counts['error']}" in summary
    assert f"skipped  {counts['skipped']}" in summary


def test_the_corpus_resumes_after_a_kill_to_the_same_bytes(tmp_path: Path, unreadable: list[Path]) -> None:
    inputs, expected = _corpus(tmp_path, unreadable)
    full = tmp_path / "full.jsonl"
    summary = score(inputs, full, model=FakeModel(), batch_size=5)
    assert summary.records == len(expected) and summary.skipped == 3
    _check(_rows(full), expected)
    data = full.read_bytes()
    cut = tmp_path / "cut.jsonl"
    for point in (len(data) // 3, len(data) // 2 + 7, len(data) - 2):
        cut.write_bytes(data[:point])
        manifest_path(cut).write_bytes(manifest_path(full).read_bytes())
        score(inputs, cut, model=FakeModel(), batch_size=5, resume=True)
        assert cut.read_bytes() == data


def _record_kind(record: Record) -> str:
    return "error" if record.error else "skipped" if record.text is None else "scored"


def _check_records(records: list[Record], expected: list[tuple[str, str, str]]) -> None:
    assert [(r.id, _record_kind(r)) for r in records] == [(e[0], e[1]) for e in expected]
    for record, (_, _, text) in zip(records, expected):
        assert text in f"{record.error or ''} {record.warning or ''}", record


FILE_NAMES = ["surrogates.jsonl", "array_first.jsonl", "all_broken.jsonl", "feed.rss", "unterminated.csv", "ragged.csv",
              "semicolons.csv", "latin1.csv", "data.jsonl.gz", "report.pdf"]


@pytest.mark.parametrize("name", FILE_NAMES)
def test_each_hostile_file_gives_one_record_per_line_or_item(tmp_path: Path, name: str) -> None:
    made = dict(_files(tmp_path))
    assert sorted(p.name for p in made) == sorted(FILE_NAMES)
    path = tmp_path / name
    _check_records(list(read_records([path])), made[path])


def test_each_bad_folder_entry_is_one_record_and_the_rest_is_read(tmp_path: Path, unreadable: list[Path]) -> None:
    expected = _folder(tmp_path, unreadable)
    records = list(read_records([tmp_path / "docs"]))
    _check_records(records, expected)
    assert not any(SECRET in (r.text or "") for r in records)


def test_a_folder_link_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "docs" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    [record] = read_records([tmp_path / "docs"])
    assert record.text is None and "outside" in (record.warning or "") and "not followed" in record.warning
    assert record.skipped and record.error is None


def test_a_named_pipe_in_a_folder_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "z.txt").write_text("after the pipe")
    def hang(*_: object) -> None:
        raise TimeoutError("reading the folder hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        records = list(read_records([tmp_path]))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [(r.skipped, r.text) for r in records] == [(True, None), (False, "after the pipe")]
    assert "named pipe" in records[0].warning


def test_lone_surrogates_are_error_rows_and_resume_goes_on(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "x", "text": "\\ud83d"}\n{"id": "y", "text": "NATO"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    score([inp], out, model=FakeModel())
    rows = _rows(out)
    assert [_kind(r) for r in rows] == ["error", "scored"] and "line 1: field 'text'" in rows[0]["error"]
    out.write_bytes(out.read_bytes()[:-3])  # killed in the second row
    assert score([inp], out, model=FakeModel(), resume=True).records == 2
    assert [r["id"] for r in _rows(out)] == ["x", "y"]


def test_stdin_json_lines_starting_with_a_bare_value_are_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b'"x"\n{"id": "a", "text": "t"}\n'))))
    records = list(read_records(["-"]))
    assert [(r.id, r.text) for r in records] == [("stdin:1", None), ("a", "t")]
    assert "guessed" in records[0].warning
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"2024\nNATO did it\n"))))
    assert [r.text for r in read_records(["-"])] == ["2024", "NATO did it"]  # plain text stays plain text


def test_french_in_latin_1_is_not_read_as_central_european() -> None:
    for text in (FRENCH, "Ça va, garçon? Où êtes-vous allé à Noël?", "Die Regierung äußerte sich über die Lage."):
        assert guess_encoding(text.encode("cp1252")) == "cp1252"
    assert guess_encoding("Rząd przygotowuje nowe przepisy dotyczące mediów.".encode("cp1250")) == "cp1250"
    assert guess_encoding("Řekl, že vláda připravuje nové zákony o médiích.".encode("cp1250")) == "cp1250"


def test_a_semicolon_csv_with_a_csv_suffix_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id;text\n1;un texte, avec une virgule\n", encoding="utf-8")
    [record] = read_records([path])
    assert (record.id, record.text) == ("1", "un texte, avec une virgule") and "semicolons" in record.warning


def _hold_lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_second_run_on_a_locked_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "text": "NATO"}\n')
    out = tmp_path / "out.jsonl"
    score([inp], out, model=FakeModel())
    before = out.read_bytes()
    fd = _hold_lock(out)
    try:
        for options in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(ScoringError, match="being written by another scoring run"):
                score([inp], out, model=FakeModel(), **options)
        assert main(["score", str(inp), "-o", str(out), "--overwrite"]) == 1
        assert "being written by another scoring run" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert out.read_bytes() == before
    score([inp], out, model=FakeModel(), overwrite=True)  # free again once the first run ends


def test_two_concurrent_runs_leave_one_clean_output(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps({"id": f"r{i}", "text": f"NATO {i}"}) + "\n" for i in range(12)))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fakes import FakeModel; "
            "from disinfo_clf.scoring import score; "
            "score([sys.argv[2]], sys.argv[3], model=FakeModel(delay=0.1), batch_size=1)")
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    first = subprocess.Popen([sys.executable, "-c", code, str(TESTS), str(inp), str(out)], env=env)
    deadline = time.monotonic() + 60
    while (not out.exists() or not out.read_bytes().count(b"\n")) and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(ScoringError, match="being written by another scoring run"):
        score([inp], out, model=FakeModel(), overwrite=True)
    assert first.wait(timeout=60) == 0
    assert [r["id"] for r in _rows(out)] == [f"r{i}" for i in range(12)]


def test_resume_refuses_an_input_replaced_at_the_same_path(tmp_path: Path) -> None:
    inp, out = tmp_path / "lines.txt", tmp_path / "out.jsonl"
    inp.write_text("first text\nsecond text\nthird text\n")
    score([inp], out, model=FakeModel())
    out.write_bytes(out.read_bytes().split(b"\n", 1)[0] + b"\n")  # killed after one row
    inp.write_text("FIRST TEXT\nSECOND TEXT\nTHIRD TEXT\n")  # same ids (path:line), other content
    with pytest.raises(ScoringError, match=r"input .*lines\.txt changed \(same size, other content\)"):
        score([inp], out, model=FakeModel(), resume=True)
    inp.write_text("first text\nsecond text, edited\nthird text\n")
    with pytest.raises(ScoringError, match=r"lines\.txt changed \(size 34 -> 42 bytes\)"):
        score([inp], out, model=FakeModel(), resume=True)


def test_resume_refuses_another_model_or_reader_options(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"id": "a", "text": "NATO", "msg": "x"}\n{"id": "b", "text": "more"}\n')
    score([inp], out, model=FakeModel())
    out.write_bytes(out.read_bytes().split(b"\n", 1)[0] + b"\n")
    with pytest.raises(ScoringError, match="the model was 'fake-model@1', now 'fake-model@2'"):
        score([inp], out, model=FakeModel("fake-model@2"), resume=True)
    retrained = FakeModel()
    retrained.fingerprint = "other weights"  # type: ignore[attr-defined]
    with pytest.raises(ScoringError, match="'fake-model@1' has other weights or settings"):
        score([inp], out, model=retrained, resume=True)
    with pytest.raises(ScoringError, match="--text-field was None, now 'msg'"):
        score([inp], out, model=FakeModel(), text_field="msg", resume=True)
    manifest_path(out).unlink()
    with pytest.raises(ScoringError, match=r"out\.jsonl\.manifest\.json is missing"):
        score([inp], out, model=FakeModel(), resume=True)
    with pytest.raises(ScoringError, match="--resume cannot check that standard input"):
        score(["-"], out, model=FakeModel(), resume=True)
    score([inp], out, model=FakeModel(), overwrite=True)  # a fresh run writes a new manifest
    assert json.loads(manifest_path(out).read_text())["model"]["id"] == "fake-model@1"
    assert score([inp], out, model=FakeModel(), resume=True).resumed == 2


def test_binary_files_and_non_text_values_are_error_rows_that_say_how_to_fix(tmp_path: Path) -> None:
    gz = tmp_path / "feed.xml"
    gz.write_bytes(gzip.compress(b"<rss></rss>"))
    values = tmp_path / "v.jsonl"
    values.write_text('{"id": 1, "text": 42}\n{"id": 2, "title": "T", "text": ["a"]}\n{"id": 3, "name": "x"}\n')
    records = list(read_records([gz, values]))
    assert "gzip-compressed, not text: decompress it first, e.g. `gunzip -k" in records[0].error
    assert records[1].error.startswith("line 1: field 'text' holds the number 42, not text; write the text as a JSON")
    assert records[2].error == "line 2: field 'text' holds a list, not text"
    assert records[3].error.startswith("line 3: no text field (looked for text, content, body, summary, title; "
                                       "fields: id, name); pass --text-field")
