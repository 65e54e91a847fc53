"""The EUvsDisinfo CSV loaders and the keyword/language/country canonicalisation."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from disinfo_clf.data.cases import Case, Skipped
from disinfo_clf.data.exports import (
    SKIP_BAD_DATE,
    SKIP_BAD_ROW,
    SKIP_EMPTY_CLAIM,
    SKIP_EXACT_DUPLICATE,
    SKIP_REPEATED_CLAIM,
    LoadReport,
    load_database_csv,
    load_review_csv,
    skip_kind,
)
from disinfo_clf.text.vocabulary import (
    canonical_countries,
    canonical_keyword,
    canonical_keywords,
    canonical_language,
    canonical_languages,
    is_outlet_keyword,
    keyword_key,
    normalise_key,
)
from disinfo_clf.resources import DATABASE_CSV, REVIEW_CSV
from disinfo_clf.taxonomy import load_taxonomy

REVIEW_HEADER = '"issue";"date";"outlet";"language";"origin";"reported by";"keywords";"source";"title";"summary";"disproof"'
DATABASE_HEADER = "date,id,title,countries,keywords,languages,outlets"


@pytest.fixture(scope="module")
def review() -> tuple[list[Case], list[Skipped]]:
    skipped: list[Skipped] = []
    return load_review_csv(skipped=skipped), skipped


@pytest.fixture(scope="module")
def database() -> tuple[list[Case], list[Skipped]]:
    skipped: list[Skipped] = []
    return load_database_csv(skipped=skipped), skipped


def _review_row(date: str = "03.07.2017", keywords: str = "NATO", title: str = "A claim.",
                summary: str = "A claim.", disproof: str = "No evidence.", language: str = "Russian") -> str:
    fields = ["75", date, "ria.ru", language, "Russia, Ukraine", "EEAS", keywords,
              "http://bit.ly/x", title, summary, disproof]
    return ";".join(f'"{f}"' for f in fields)


def _write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the vendored exports ---------------------------------------------------------------

def test_review_rows_are_all_accounted_for(review: tuple[list[Case], list[Skipped]]) -> None:
    cases, skipped = review
    report = LoadReport.of(str(REVIEW_CSV), cases, skipped)
    assert report.rows_read == 2874
    assert report.kept == len(cases) and len(cases) > 2400
    assert report.skipped[SKIP_EXACT_DUPLICATE] == 287
    assert report.skipped[SKIP_REPEATED_CLAIM] > 100
    assert set(report.skipped) == {SKIP_EXACT_DUPLICATE, SKIP_REPEATED_CLAIM}
    assert "2874 rows read" in str(report)


def test_database_rows_are_all_accounted_for(database: tuple[list[Case], list[Skipped]]) -> None:
    cases, skipped = database
    assert len(cases) + len(skipped) == 8964
    assert {skip_kind(s) for s in skipped} == {SKIP_REPEATED_CLAIM}
    assert all(s.source == str(DATABASE_CSV) and s.line > 1 for s in skipped)


def test_review_cases_carry_claim_debunk_and_metadata(review: tuple[list[Case], list[Skipped]]) -> None:
    cases, _ = review
    first = cases[0]
    assert first.claim.startswith("There are racist posters in the streets of Kyiv")
    assert first.debunk.startswith("This is not an ongoing poster campaign")
    assert first.published == dt.date(2017, 7, 3)
    assert first.issue == 75
    assert first.outlet == "Russian Embassy UK Twitter account"
    assert first.languages == ["English"] and first.countries == ["Russia", "Ukraine"]
    assert first.keywords == ["Racism", "Russian language", "Ethnic Russians"]
    assert first.source == "disinfo_review_2015_2017.csv" and first.row == 1
    assert all(c.claim and c.debunk and c.published for c in cases)
    assert all(not c.narratives for c in cases)


def test_database_cases_use_title_as_claim(database: tuple[list[Case], list[Skipped]]) -> None:
    cases, _ = database
    first = cases[0]
    assert first.claim == first.title == "Under US influence, Europe continues burning bridges with Russia even amidst the pandemic"
    assert first.url == "https://euvsdisinfo.eu/report/under-us-influence-europe-burning-bridges-russia-pandemic/"
    assert first.published == dt.date(2020, 6, 30)
    assert first.keywords == ["coronavirus", "European Union", "US presence in Europe", "Crimea"]
    assert first.languages == ["Spanish"]  # "Spanish+Castilian" in the file
    assert min(c.published for c in cases) == dt.date(2015, 1, 6)
    assert all(c.url and c.url.startswith("https://euvsdisinfo.eu/report/") for c in cases)
    assert all(c.outlet is None or "Show more" not in c.outlet for c in cases)


def test_case_ids_are_unique_across_both_exports(review, database) -> None:
    ids = [c.id for c in review[0] + database[0]]
    assert len(ids) == len(set(ids))


def test_kept_cases_have_no_repeated_claims(review, database) -> None:
    for cases, _ in (review, database):
        keys = [(c.title.casefold(), c.claim.casefold()) for c in cases]
        assert len(keys) == len(set(keys))


def test_variants_are_canonicalised_in_both_exports(review, database) -> None:
    cases = review[0] + database[0]
    keywords = {k for c in cases for k in c.keywords}
    languages = {lang for c in cases for lang in c.languages}
    countries = {x for c in cases for x in c.countries}
    assert {"Conspiracy", "The West", "LNR", "DNR", "EU", "UN", "RT", "World War 2"}.isdisjoint(keywords)
    assert {"Conspiracy theory", "West", "LPR", "DPR", "European Union", "WWII"} <= keywords
    assert {"Castilian", "Bulgaria", "Lithuania", "Romania", "Spain", "Serbia", "Moldova"}.isdisjoint(languages)
    assert {"Spanish", "Bulgarian", "Lithuanian", "Romanian"} <= languages
    assert "The West" not in countries and "West" in countries
    assert 450 < len(keywords) < 600


def test_review_keywords_match_database_spelling(review, database) -> None:
    db_keywords = {k for c in database[0] for k in c.keywords}
    review_only = {k for c in review[0] for k in c.keywords} - db_keywords
    # what remains is genuinely review-only vocabulary, not a drifted spelling
    assert not {keyword_key(k) for k in review_only} & {keyword_key(k) for k in db_keywords}


def test_taxonomy_argument_tags_cases(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, _review_row(keywords="NATO, Conspiracy"))
    assert load_review_csv(path)[0].narratives == []
    assert load_review_csv(path, taxonomy=load_taxonomy())[0].narratives == ["nato-aggression"]


# --- robustness on small synthetic files -----------------------------------------------

def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.csv", REVIEW_HEADER.replace('"summary";', ""), _review_row())
    with pytest.raises(ValueError, match=r"broken\.csv.*'summary'"):
        load_review_csv(path)
    path = _write(tmp_path, "db.csv", "date,title,keywords", "2020-01-01,x,NATO")
    with pytest.raises(ValueError, match=r"db\.csv.*'id'"):
        load_database_csv(path)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        load_database_csv(_write(tmp_path, "empty.csv", ""))


def test_bad_date_warns_and_skips_with_line_and_field(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, _review_row(), _review_row(date="31.02.2017", title="B", summary="B"))
    skipped: list[Skipped] = []
    with caplog.at_level(logging.WARNING, logger="disinfo_clf.data.exports"):
        cases = load_review_csv(path, skipped=skipped)
    assert len(cases) == 1
    assert skipped == [Skipped(str(path), 3, "date", skipped[0].reason)]
    assert skip_kind(skipped[0]) == SKIP_BAD_DATE and "31.02.2017" in skipped[0].reason
    assert "line 3" in caplog.text and "'date'" in caplog.text


def test_bad_date_raises_in_raise_mode(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, _review_row(date="2017/13/45"))
    with pytest.raises(ValueError, match=r"r\.csv, line 2, field 'date'"):
        load_review_csv(path, errors="raise")


def test_unknown_error_mode_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, _review_row())
    with pytest.raises(ValueError, match="errors"):
        load_review_csv(path, errors="ignore")  # type: ignore[arg-type]


def test_wrong_field_count_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, '"75";"03.07.2017";"too few"', _review_row())
    skipped: list[Skipped] = []
    assert len(load_review_csv(path, skipped=skipped)) == 1
    assert skip_kind(skipped[0]) == SKIP_BAD_ROW and skipped[0].line == 2
    with pytest.raises(ValueError, match="line 2"):
        load_review_csv(path, errors="raise")


def test_empty_summary_falls_back_to_title_or_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, _review_row(title="Only a title.", summary=""),
                  _review_row(title="", summary=""))
    skipped: list[Skipped] = []
    cases = load_review_csv(path, skipped=skipped)
    assert [c.claim for c in cases] == ["Only a title."]
    assert skipped[0].line == 3 and skipped[0].field == "summary" and skip_kind(skipped[0]) == SKIP_EMPTY_CLAIM


def test_duplicates_are_dropped_and_reported(tmp_path: Path) -> None:
    newer = _review_row(date="05.07.2017", title="Same claim.", summary="Same claim.")
    older = _review_row(date="01.07.2017", title="Same  claim", summary="same claim")
    path = _write(tmp_path, "r.csv", REVIEW_HEADER, newer, newer, older)
    skipped: list[Skipped] = []
    cases = load_review_csv(path, skipped=skipped)
    assert [c.published for c in cases] == [dt.date(2017, 7, 1)]  # the earliest report is kept
    assert [(s.line, skip_kind(s)) for s in skipped] == [(2, SKIP_REPEATED_CLAIM), (3, SKIP_EXACT_DUPLICATE)]
    assert "line 4" in skipped[0].reason and "line 2" in skipped[1].reason


def test_delimiter_and_multi_values_are_detected(tmp_path: Path) -> None:
    comma_review = REVIEW_HEADER.replace(";", ",")
    row = _review_row(keywords="The West+Conspiracy", language="Castilian").replace(";", ",")
    case = load_review_csv(_write(tmp_path, "r.csv", comma_review, row))[0]
    assert case.keywords == ["West", "Conspiracy theory"] and case.languages == ["Spanish"]
    path = _write(tmp_path, "db.tsv", DATABASE_HEADER.replace(",", "\t"),
                  "\t".join(["06.01.2015", "https://euvsdisinfo.eu/report/x/", "Claim", "The West, Ukraine",
                             "Conspiracy, lnr", "Bulgaria", "a+Show more"]))
    case = load_database_csv(path)[0]
    assert case.published == dt.date(2015, 1, 6)
    assert case.countries == ["West", "Ukraine"] and case.keywords == ["Conspiracy theory", "LPR"]
    assert case.languages == ["Bulgarian"] and case.outlet == "a"


def test_line_numbers_count_multi_line_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, "db.csv", DATABASE_HEADER,
                  '2020-01-01,https://e/1,"A claim\nover two lines",,NATO,English,x',
                  "2020-13-01,https://e/2,Another,,NATO,English,x")
    skipped: list[Skipped] = []
    cases = load_database_csv(path, skipped=skipped)
    assert cases[0].row == 1 and skipped[0].line == 4


def test_non_utf8_export_names_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    lines = [REVIEW_HEADER, _review_row(), _review_row(title="Le président", summary="Le président a menti.")]
    path.write_bytes("\n".join(lines).encode("cp1252"))
    with pytest.raises(ValueError, match=r"cp1252\.csv is not UTF-8 text \(line 3\b.*`iconv -f CP125\d -t UTF-8 "):
        load_review_csv(path)


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_windows_and_old_mac_line_endings_load_the_same_cases(tmp_path: Path, ending: str) -> None:
    rows = [REVIEW_HEADER, _review_row(summary="A claim\nover two lines.", disproof="First.\n\nSecond."),
            _review_row(date="31.02.2017", title="B", summary="B"), _review_row(title="C", summary="C")]
    (tmp_path / "unix").mkdir()
    (tmp_path / "other").mkdir()
    unix_path, other_path = tmp_path / "unix" / "r.csv", tmp_path / "other" / "r.csv"
    unix_path.write_bytes("\n".join(rows).encode())
    other_path.write_bytes("\n".join(rows).replace("\n", ending).encode())
    unix_skips: list[Skipped] = []
    other_skips: list[Skipped] = []
    unix = load_review_csv(unix_path, skipped=unix_skips)
    other = load_review_csv(other_path, skipped=other_skips)
    assert other == unix and len(unix) == 2
    assert unix[0].claim == "A claim\nover two lines." and unix[0].debunk == "First.\n\nSecond."
    assert [(s.line, s.field) for s in other_skips] == [(s.line, s.field) for s in unix_skips] == [(6, "date")]


def test_exports_read_every_date_format_of_the_case_pages(tmp_path: Path) -> None:
    rows = [",".join([f'"{date}"', f"https://e/{i}", f"Claim {i}", "", "NATO", "", ""])
            for i, date in enumerate(["March 02, 2022", "11/01/2022", "2020-06-30", "06.01.2015"])]
    cases = load_database_csv(_write(tmp_path, "db.csv", DATABASE_HEADER, *rows))
    assert [c.published for c in cases] == [dt.date(2022, 3, 2), dt.date(2022, 1, 11), dt.date(2020, 6, 30),
                                            dt.date(2015, 1, 6)]


# --- vocabulary ---------------------------------------------------------------------------

@pytest.mark.parametrize(("variant", "canonical"), [
    ("Conspiracy", "Conspiracy theory"), ("  the   west ", "West"), ("EU", "European Union"),
    ("LNR", "LPR"), ("Azov", "Azov Battalion"), ("RT", "Russia Today (RT)"),
    ("Bigniew Brzezinski", "Zbigniew Brzezinski"), ("NATO", "NATO"), ("Skripal", "Sergei Skripal"),
])
def test_canonical_keyword(variant: str, canonical: str) -> None:
    assert canonical_keyword(variant) == canonical
    assert keyword_key(variant) == keyword_key(canonical.upper())


def test_canonical_lists_merge_variants() -> None:
    assert canonical_keywords(["Conspiracy", "conspiracy theory", "", "NATO"]) == ["Conspiracy theory", "NATO"]
    assert canonical_languages(["Spanish", "Castilian"]) == ["Spanish"]
    assert canonical_language("Lithuania") == "Lithuanian" and canonical_language("Russian") == "Russian"
    assert canonical_countries(["The West", "West", "FYROM"]) == ["West", "North Macedonia"]
    assert is_outlet_keyword("RT") and is_outlet_keyword("Sputnik") and not is_outlet_keyword("NATO")


@pytest.mark.parametrize(("text", "key"), [
    ("  Same  claim. ", "same claim"), ("NATO’s “plan”—again!", "nato s plan again"), ("snake_case", "snake case"),
    ("Straße", "strasse"), ("¿Qué?", "qué"), ("", ""), ("...", ""),
])
def test_normalise_key(text: str, key: str) -> None:
    assert normalise_key(text) == key
