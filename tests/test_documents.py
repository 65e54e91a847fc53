"""parse_document / parse_file on the five seed layouts, on bad input and on shuffled layouts.

The ``role_model`` fixture is the shipped role model when it exists, else the cue-word stand-in,
so these tests hold for both.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disinfo_clf.data.cases import Case
from disinfo_clf.data.documents import parse_document, parse_file, segment
from disinfo_clf.models.roles import CueRoleModel, RoleModel, role_model as load_role_model
from disinfo_clf.resources import ROLE_MODEL_DIR, seed_paths

PATHS = {path.name[:3]: path for path in seed_paths()}
SEEDS = {key: path.read_text(encoding="utf-8") for key, path in PATHS.items()}
SEED_LINES = sorted({line for text in SEEDS.values() for line in text.splitlines()})
BOILERPLATE = (
    "See also the statement", "Read also related", "See other examples", "Related disinfo cases",
    "Cases in the EUvsDisinfo database", "Your opinion matters", "Data Protection Information",
    "Subscribe to the Disinfo Review", "Mailchimp", "publication/media", "see more", "Disproof", "Summary",
)


def paragraphs(field: str) -> list[str]:
    return [p for p in field.split("\n\n") if p]


@pytest.fixture(scope="module")
def role_model() -> RoleModel:
    return load_role_model() if ROLE_MODEL_DIR.is_dir() else CueRoleModel()


@pytest.fixture(scope="module")
def parsed(role_model: RoleModel) -> dict[str, list[Case]]:
    return {key: parse_file(path, role_model=role_model) for key, path in PATHS.items()}


def test_seed_000_one_case_with_bulleted_metadata(parsed: dict[str, list[Case]]) -> None:
    (case,) = parsed["000"]
    assert case.title == "After Ukraine, Western scriptwriters tried to organise coup d'état in Belarus and Kazakhstan"
    assert case.outlet == "ru.armeniasputnik.am"
    assert case.published == dt.date(2022, 3, 2)
    assert case.languages == ["Russian"]
    assert case.issue == 274
    assert case.countries == ["Kazakhstan", "Belarus", "Ukraine"]
    assert case.keywords == []
    assert case.claim == (
        "After Ukraine, the same Western scriptwriters tried to organise coup d'état in Belarus and "
        "Kazakhstan. But this was not possible thanks to Russia and the CSTO."
    )
    assert case.debunk.startswith("Recurring pro-Kremlin disinformation narrative")
    assert case.debunk.endswith("Collective Security Treaty Organisation in the country.")
    assert case.debunk.count("\n\n") == 4, "five debunk paragraphs"
    assert case.line == 1 and case.source == str(PATHS["000"])


def test_seed_001_four_cases_metadata_on_the_first(parsed: dict[str, list[Case]]) -> None:
    cases = parsed["001"]
    assert [c.title for c in cases] == [
        "Kazakhstan: The neo-colonial West failed again with a colour revolution thanks to the CSTO",
        "NATO lies blatantly and expands to the East",
        "UK-led Deep State failed in Kazakhstan due to Russian ultimatum",
        "Lithuania and Latvia refuse to help Belarus in investigation of genocide of Belarusians during WWII",
    ]
    first = cases[0]
    assert first.keywords == ["Colour revolutions", "George Soros", "Euromaidan"]
    assert first.issue == 269
    assert first.published == dt.date(2022, 1, 11), "11/01/2022 is dd/mm/yyyy"
    assert first.languages == ["French", "Russian"]
    assert first.countries == ["Kazakhstan", "Belarus", "Russia", "Ukraine", "US"]
    assert first.outlet is None
    assert first.claim.count("\n\n") == 2, "three claim paragraphs"
    assert first.debunk.startswith("A disinformation claim provided with no evidence.")
    assert first.debunk.endswith("Corruption Perception Index (CPI).")
    assert [c.line for c in cases] == [1, 36, 46, 58]
    for case in cases[1:]:
        assert case.claim and case.debunk
        assert (case.issue, case.published, case.languages, case.keywords) == (None, None, [], [])
    assert cases[1].claim.startswith("The West, after the collapse of the Soviet Union")
    assert cases[1].debunk.startswith("Recurring pro-Kremlin disinformation narrative about NATO enlargement.")
    assert cases[3].debunk.endswith("that never existed”).")


def test_seed_002_headless_nato_claim_is_its_own_case(parsed: dict[str, list[Case]]) -> None:
    nato, kazakhstan = parsed["002"]
    assert nato.claim == (
        "The West, after the collapse of the Soviet Union and the collapse of the Warsaw Pact, gave "
        "guarantees that NATO would not expand to the east. It was blatantly lying, and today we see it clearly."
    )
    assert nato.debunk == ""
    assert nato.title == "The West, after the collapse of the Soviet Union and the collapse of the Warsaw Pact, gave guarantees that NATO would not expand to the east."
    assert kazakhstan.title == "The Belarusian, Ukrainian and Kazakh cases are communicating vessels."
    assert kazakhstan.claim.endswith("now the West is trying to take the ball.")
    assert kazakhstan.debunk.startswith("This claim advances an emerging pro-Kremlin narrative")
    assert kazakhstan.debunk.endswith("contains many gaps and inconsistencies.")
    assert (nato.line, kazakhstan.line) == (1, 2)


def test_seed_003_bare_keyword_line_and_boilerplate(parsed: dict[str, list[Case]]) -> None:
    (case,) = parsed["003"]
    assert case.title == "Western special services involved in Kazakhstan protests"
    assert case.keywords == ["Colour revolutions"]
    assert case.issue == 270
    assert case.languages == ["Azerbaijani"]
    assert case.outlet == "sputnik.az"
    assert case.published == dt.date(2022, 1, 25)
    assert case.countries == ["Kazakhstan"]
    assert case.claim.startswith("The degree of organisational, logistical and operational coordination")
    assert "\n" not in case.claim
    assert case.debunk.startswith("There is no evidence to support claims about a foreign interference")
    assert case.debunk.endswith("Corruption Perception Index (CPI).")


def test_seed_004_unrelated_first_claim_has_no_debunk(parsed: dict[str, list[Case]]) -> None:
    donbas, kazakhstan = parsed["004"]
    assert donbas.title == "Ukraine continues to stack military equipment near contact lines in the Donbas region."
    assert donbas.claim.endswith("from the organisation's monitoring UAVs.")
    assert donbas.debunk == ""
    assert kazakhstan.claim.startswith('Another attempt of the "colour revolution" in Kazakhstan')
    assert kazakhstan.claim.endswith("chosen by some countries.")
    assert kazakhstan.claim.count("\n\n") == 1, "lines 2 and 3 are one claim"
    assert kazakhstan.debunk.startswith("This claim advances an emerging pro-Kremlin disinformation narrative")
    assert kazakhstan.debunk.endswith("Corruption Perception Index (CPI).")
    assert (donbas.line, kazakhstan.line) == (1, 2)


@pytest.mark.parametrize("key", sorted(SEEDS))
def test_claims_debunks_and_boilerplate_kept_apart(key: str, parsed: dict[str, list[Case]]) -> None:
    text = SEEDS[key]
    lines = text.splitlines()
    for case in parsed[key]:
        assert case.claim, "every seed case has a claim"
        for paragraph in paragraphs(case.debunk):
            assert paragraph not in case.claim
        for field in (case.title, case.claim, case.debunk):
            assert not any(marker in field for marker in BOILERPLATE), field[:80]
            assert all(paragraph in text for paragraph in paragraphs(field))
        assert case.narratives == []
        first_line = lines[case.line - 1]
        assert case.title in first_line or first_line.startswith(case.claim[:40])


def test_parse_document_without_source(role_model: RoleModel) -> None:
    (case,) = parse_document(SEEDS["000"], role_model=role_model)
    assert case.source is None and case.id == "None:1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("March 02, 2022", dt.date(2022, 3, 2)), ("11/01/2022", dt.date(2022, 1, 11)), ("Jan 5, 2021", dt.date(2021, 1, 5)),
     ("2020-06-30", dt.date(2020, 6, 30))],
)
def test_publication_dates(value: str, expected: dt.date) -> None:
    text = f"DISINFO: A title\n  • Date of publication: {value}\n\n\nThe claim.\n\n\nThe debunk."
    (case,) = parse_document(text)
    assert case.published == expected
    assert (case.claim, case.debunk) == ("The claim.", "The debunk.")


def test_unreadable_date_names_source_line_and_field() -> None:
    text = "DISINFO: A title\n  • Outlet: x.ru\n  • DATE OF PUBLICATION: someday\n\n\nThe claim."
    with pytest.raises(ValueError, match=r"doc\.txt, line 3, field 'Date of publication'.*'someday'"):
        parse_document(text, source="doc.txt")


@pytest.mark.parametrize(
    ("bad", "error", "hint"),
    [("", ValueError, "empty"), ("  \n\t\n", ValueError, "empty"), (None, TypeError, "NoneType"),
     (b"DISINFO: x", TypeError, r"decode\('utf-8'\)"), (["text"], TypeError, "str")],
)
def test_bad_input_says_what_to_pass(bad: object, error: type[Exception], hint: str) -> None:
    with pytest.raises(error, match=hint):
        parse_document(bad)  # type: ignore[arg-type]


def test_parse_file_names_a_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("DISINFO: Affaire\n\n\nUne affirmation du café.".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt is not UTF-8 text \(line 4\b.*`iconv -f "):
        parse_file(path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt"):
        parse_file(empty)


@given(st.lists(st.sampled_from(SEED_LINES) | st.text(max_size=30), min_size=1, max_size=25),
       st.sampled_from(["\n", "\n\n", "\n\n\n"]))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_mix_of_seed_lines_parses(role_model: RoleModel, lines: list[str], sep: str) -> None:
    text = sep.join(lines)
    if not text.strip():
        return
    has_claim = any(span.label == "claim" for span in segment(text, role_model=role_model))
    try:
        cases = parse_document(text, source="mix", role_model=role_model)
    except ValueError as exc:
        assert str(exc).startswith("no case found in mix: ") and not has_claim
        return
    assert has_claim
    for case in cases:
        assert case.claim and case.title
        for field in (case.claim, case.debunk):
            assert all(paragraph in text for paragraph in paragraphs(field))
            assert not any(marker in field for marker in ("See also the statement", "Your opinion matters"))
        assert case.line is not None and 1 <= case.line <= len(text.splitlines())


@pytest.mark.parametrize(("text", "reason"), [
    ("DISINFO:", "only titles, headings, metadata"),
    ("DISINFO: A title\n  • Outlet: x.ru\nSummary\n", "only titles, headings, metadata"),
    ("Disproof\nfoo.", "follows a 'Disproof' heading"),
])
def test_document_without_claim_text_is_an_error(role_model: RoleModel, text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"no case found in doc\.txt: .*{reason}.*A case needs claim text"):
        parse_document(text, source="doc.txt", role_model=role_model)
    spans = segment(text, role_model=role_model)
    assert "".join(s.text for s in spans).replace(" ", "") == "".join(text.split())
    assert "claim" not in {s.label for s in spans}


def test_claimless_case_is_skipped_with_a_warning(role_model: RoleModel, caplog: pytest.LogCaptureFixture) -> None:
    text = "DISINFO: Real case\n\n\nThe claim.\n\n\nThe debunk.\nDISINFO: Empty case\nDisproof\nOnly a debunk."
    with caplog.at_level(logging.WARNING, logger="disinfo_clf.data.documents"):
        cases = parse_document(text, source="doc.txt", role_model=role_model)
    assert [(c.title, c.claim, c.debunk) for c in cases] == [("Real case", "The claim.", "The debunk.")]
    assert "doc.txt, line 8: skipped a case with no claim text" in caplog.text


@pytest.mark.parametrize("key", sorted(SEEDS))
@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_windows_and_old_mac_line_endings_change_nothing(role_model: RoleModel, key: str, ending: str) -> None:
    other = SEEDS[key].replace("\n", ending)
    assert parse_document(other, source="s", role_model=role_model) == parse_document(SEEDS[key], source="s",
                                                                                       role_model=role_model)
    unix_spans = segment(SEEDS[key], role_model=role_model)
    other_spans = segment(other, role_model=role_model)
    assert [(s.label, s.text) for s in other_spans] == [(s.label, s.text) for s in unix_spans]
    assert all(other[s.start:s.end] == s.text and "\r" not in s.text for s in other_spans)


def test_crlf_file_parses_like_the_seed(tmp_path: Path, role_model: RoleModel) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(SEEDS["001"].replace("\n", "\r\n").encode("utf-8"))
    cases = parse_file(path, role_model=role_model)
    expected = parse_document(SEEDS["001"], source=str(path), role_model=role_model)
    assert cases == expected and all("\r" not in c.claim + c.debunk for c in cases)
