"""Known-case matching: case files, index build/save/load, search, the CLI, and the shipped index."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disinfo_clf.matching.casefile import CaseFileError, IndexedCase, data_sha256, load_case_file, vendored_cases
from disinfo_clf.cli import main
from disinfo_clf.matching.index import INDEX_DIR, CaseIndex, CaseIndexError, CaseMatch, build_index, load_index
from disinfo_clf.encoders import use_encoder
from disinfo_clf.matching.search import match
from hashing_encoder import HashingEncoder

CASES = [
    {"id": "fc-1", "url": "https://factcheck.example/1", "claim": "NATO promised Gorbachev not to expand east",
     "date": "2021-03-04", "narratives": "nato-aggression;west-lies"},
    {"id": "fc-2", "claim": "The pandemic virus was made in a secret American laboratory in Georgia",
     "date": "04.05.2021", "narratives": ["biolabs"]},
    {"url": "https://factcheck.example/3", "claim": "Ukraine is run by a Nazi government", "date": "2021-06-01",
     "narratives": "nazi-ukraine|russophobia"},
    {"id": "fc-4", "claim": "Sanctions hurt Europe more than Russia", "title": "Sanctions backfire"},
    {"id": "fc-5", "claim": "NATO promised Gorbachev not to expand east!", "date": "2022-01-01"},
]


@pytest.fixture(scope="module")
def encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture()
def jsonl_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES), encoding="utf-8")
    return path


@pytest.fixture()
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.csv"
    rows = ["id,url,claim,date,narratives"]
    for c in CASES:
        narratives = c.get("narratives", "")
        narratives = ";".join(narratives) if isinstance(narratives, list) else narratives
        rows.append(",".join(f'"{c.get(k, "")}"' for k in ("id", "url", "claim", "date")) + f',"{narratives}"')
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_case_files_in_csv_and_jsonl_read_alike(jsonl_file: Path, csv_file: Path) -> None:
    from_jsonl, from_csv = load_case_file(jsonl_file), load_case_file(csv_file)
    assert [c.id for c in from_jsonl] == [c.id for c in from_csv] == \
        ["fc-1", "fc-2", "https://factcheck.example/3", "fc-4", "fc-5"]
    first, second, third, fourth = from_jsonl[:4]
    assert first.url == "https://factcheck.example/1" and first.narratives == ("nato-aggression", "west-lies")
    assert second.date == "2021-05-04" and second.url is None and second.narratives == ("biolabs",)
    assert third.url == third.id and third.narratives == ("nazi-ukraine", "russophobia")
    assert fourth.title == "Sanctions backfire" and fourth.date is None and from_csv[3].title == from_csv[3].claim
    assert [c.narratives for c in from_csv] == [c.narratives for c in from_jsonl]


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ('{"id": "a", "claim": "x"}\n{"id": "b"}\n', ".jsonl", "line 2, field 'claim'"),
        ('{"id": "a", "claim": "x", "date": "yesterday"}\n', ".jsonl", "line 1, field 'date'"),
        ('{"id": "a", "claim": "x"}\n{"id": "a", "claim": "y"}\n', ".jsonl", "line 2, field 'id'"),
        ('{"claim": "x"}\n', ".jsonl", "line 1, field 'id'"),
        ('{"id": "a", "claim": "x"}\n{"id": "b", "claim": \n', ".jsonl", "line 2: not JSON"),
        ('["a", "x"]\n', ".jsonl", "line 1: a JSON list"),
        ('{"id": "a", "claim": "x", "narratives": 3}\n', ".jsonl", "line 1, field 'narratives'"),
        ('{"id": "a", "claim": "x", "url": "ftp://x"}\n', ".jsonl", "line 1, field 'url'"),
        ("id,text_body\na,b\n", ".csv", "line 1: no 'claim' column"),
        ('id,claim\na,"one"\nb,"two",extra\n', ".csv", "line 3: 3 cells"),
        ("id,claim\n", ".csv", "holds no cases"),
    ],
)
def test_bad_case_files_name_file_line_and_field(tmp_path: Path, content: str, suffix: str, expected: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CaseFileError) as info:
        load_case_file(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_index_round_trip_and_exact_claim_first(tmp_path: Path, jsonl_file: Path, encoder: HashingEncoder) -> None:
    built = build_index(jsonl_file, tmp_path / "idx", encoder=encoder)
    loaded = CaseIndex.load(tmp_path / "idx")
    assert len(loaded) == 5 and loaded.meta.encoder_fingerprint == encoder.fingerprint
    assert loaded.meta.data_sha256 == built.meta.data_sha256 == data_sha256(loaded.cases)
    assert loaded.cases == built.cases
    # fp16 on disk: similarities agree with the in-memory index to about 1e-3
    np.testing.assert_allclose(loaded.embeddings, built.embeddings, atol=2e-3)
    best = match("Ukraine is run by a Nazi government", k=3, index=tmp_path / "idx", encoder=encoder)
    assert best[0].id == "https://factcheck.example/3" and best[0].score == pytest.approx(1.0, abs=2e-3)
    assert [m.score for m in best] == sorted((m.score for m in best), reverse=True) and len(best) == 3


def test_repeats_of_one_claim_count_once(encoder: HashingEncoder) -> None:
    cases = [IndexedCase(id=f"c{i}", url=None, title="t", claim=claim, date=None) for i, claim in
             enumerate(["The West wants war", "the west WANTS war.", "Sanctions hurt Europe", "Crimea was never annexed"])]
    idx = CaseIndex.build(cases, encoder)
    results = match("The West wants war", k=3, index=idx, encoder=encoder)
    assert [m.id for m in results][0] == "c0" and "c1" not in [m.id for m in results] and len(results) == 3


def test_match_reads_every_window_of_a_long_text(encoder: HashingEncoder, jsonl_file: Path) -> None:
    idx = CaseIndex.build(load_case_file(jsonl_file), encoder)
    filler = ("The weather stayed mild all week " + "and the trains ran on time " * 13).strip() + ". "  # one window each
    article = filler * 3 + "Ukraine is run by a Nazi government. " + filler * 3
    assert match(article, k=1, index=idx, encoder=encoder)[0].id == "https://factcheck.example/3"
    lists = match(["Sanctions hurt Europe more than Russia", article], k=2, index=idx, encoder=encoder)
    assert [len(x) for x in lists] == [2, 2] and lists[0][0].id == "fc-4"


def test_case_match_is_json_ready(encoder: HashingEncoder, jsonl_file: Path) -> None:
    idx = CaseIndex.build(load_case_file(jsonl_file), encoder)
    found = match("NATO promised Gorbachev not to expand east", index=idx, encoder=encoder)[0]
    assert isinstance(found, CaseMatch)
    data = json.loads(json.dumps(found.to_dict()))
    assert set(data) == {"id", "url", "title", "claim", "date", "narratives", "score"}
    assert data["narratives"] == ["nato-aggression", "west-lies"] and isinstance(data["score"], float)


def test_another_encoder_is_refused(encoder: HashingEncoder, jsonl_file: Path) -> None:
    idx = CaseIndex.build(load_case_file(jsonl_file), encoder)
    other = HashingEncoder(fingerprint="0" * 64, name_or_path="other-encoder")
    with pytest.raises(CaseIndexError, match="built with encoder 'hashing-encoder'.*'other-encoder'.*rebuild"):
        match("anything", index=idx, encoder=other)


def test_bad_arguments_and_directories(tmp_path: Path, encoder: HashingEncoder, jsonl_file: Path) -> None:
    idx = CaseIndex.build(load_case_file(jsonl_file), encoder)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        match("x", k=0, index=idx, encoder=encoder)
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        match(["x", "  "], index=idx, encoder=encoder)
    with pytest.raises(CaseIndexError, match="does not exist"):
        CaseIndex.load(tmp_path / "nowhere")
    idx.save(tmp_path / "idx")
    (tmp_path / "idx" / "cases.json").unlink()
    with pytest.raises(CaseIndexError, match="cases.json is missing"):
        CaseIndex.load(tmp_path / "idx")
    with pytest.raises(CaseIndexError, match="already exists"):
        build_index(jsonl_file, tmp_path / "idx", encoder=encoder)


def test_faiss_search_agrees_with_exact(encoder: HashingEncoder) -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cases = [IndexedCase(id=str(i), url=None, title=str(i), claim=f"claim {i}", date=None) for i in range(3000)]
    idx = CaseIndex(cases, vectors, CaseIndex.build(cases[:1], encoder, embeddings=vectors[:1]).meta)
    idx.nprobe = 1000  # every list: the approximate search must then be exact
    queries = vectors[:50] + 0.01 * rng.normal(size=(50, 32)).astype(np.float32)
    exact = idx.neighbours(queries, 5, backend="exact")
    approx = idx.neighbours(queries, 5, backend="faiss")
    assert (approx[1][:, 0] == np.arange(50)).all() and (exact[1] == approx[1]).mean() > 0.98
    np.testing.assert_allclose(approx[0], exact[0], atol=1e-4)


def test_cli_index_build_and_match_json(tmp_path: Path, csv_file: Path, encoder: HashingEncoder,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with use_encoder(encoder):
        assert main(["index", "build", str(csv_file), "-o", str(tmp_path / "idx")]) == 0
        assert "indexed 5 cases" in capsys.readouterr().out
        assert main(["match", "--json", "--k", "2", "--index", str(tmp_path / "idx"), "Sanctions hurt Europe more than Russia"]) == 0
        line = json.loads(capsys.readouterr().out)
        assert line["text"] == "Sanctions hurt Europe more than Russia" and len(line["matches"]) == 2
        assert line["matches"][0]["id"] == "fc-4" and set(line["matches"][0]) >= {"url", "claim", "score", "date"}
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO("Ukraine is run by a Nazi government"))
        assert main(["match", "--index", str(tmp_path / "idx")]) == 0
        assert capsys.readouterr().out.startswith(" 1. 1.000")
        assert main(["index", "build", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x")]) == 1
        assert "missing.csv does not exist" in capsys.readouterr().err


def test_shipped_index_is_current_with_the_vendored_data() -> None:
    shipped = load_index()
    cases = vendored_cases()
    assert len(shipped) == len(cases) > 10_000 and shipped.meta.data_sha256 == data_sha256(cases), \
        "the shipped case index is stale: run `python scripts/build_index.py`"
    assert shipped.embeddings.shape == (len(cases), 384) and shipped.meta.encoder == "intfloat/multilingual-e5-small"
    assert (INDEX_DIR / "embeddings.safetensors").stat().st_size < 10_000_000  # fp16


@pytest.fixture(scope="module")
def e5():
    from disinfo_clf.encoders import load_encoder

    return load_encoder()


@pytest.mark.slow
def test_shipped_index_matches_the_encoder_and_finds_translations(e5) -> None:
    shipped = load_index()
    shipped.check(e5)  # raises on other weights
    url = "https://euvsdisinfo.eu/report/mein-kampf-is-one-of-the-most-popular-books-in-georgia/"
    renderings = ["«Майн кампф» — одна из самых популярных книг в Грузии",
                  "«Майн кампф» — одна з найпопулярніших книжок у Грузії",
                  "„Mein Kampf“ gehört in Georgien zu den beliebtesten Büchern",
                  "Mein Kampf is among the most popular books in Georgia"]
    for text, results in zip(renderings, match(renderings, k=5, encoder=e5)):
        assert url in [m.url for m in results], (text, results)
    nato = match("НАТО обещало не расширяться на восток", k=5, encoder=e5)
    assert all("NATO" in m.claim for m in nato[:3])


def test_a_querys_similarities_do_not_depend_on_the_queries_batched_with_it() -> None:
    from disinfo_clf.matching.vectors import similarities

    rng = np.random.default_rng(3)
    cases = rng.normal(size=(5000, 64)).astype(np.float32)
    queries = rng.normal(size=(37, 64)).astype(np.float32)
    together = similarities(queries, cases)
    for i in (0, 5, 17, 36):
        assert np.array_equal(similarities(queries[i:i + 1], cases)[0], together[i])
        assert np.array_equal(similarities(queries[i:], cases)[0], together[i])
