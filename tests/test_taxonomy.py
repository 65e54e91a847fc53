"""The narrative taxonomy: the shipped YAML, tagging, coverage on the real exports, and errors."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from disinfo_clf.data.cases import Case
from disinfo_clf.data.exports import load_database_csv, load_review_csv
from disinfo_clf.resources import TAXONOMY_YAML
from disinfo_clf.taxonomy import Narrative, Taxonomy, TaxonomyError, load_taxonomy

REPO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "narratives.yaml"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def database_tags(taxonomy: Taxonomy) -> tuple[list[Case], list[list[str]], list[list[str]]]:
    """Database cases, their tags from keywords + title, and from keywords alone."""
    cases = load_database_csv()
    return (cases, [taxonomy.tag(c.keywords, text=c.title) for c in cases],
            [taxonomy.tag(c.keywords) for c in cases])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "narratives.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped file -------------------------------------------------------------------

def test_shipped_taxonomy_is_the_configs_file(taxonomy: Taxonomy) -> None:
    if REPO_CONFIG.exists():  # a source checkout: the packaged copy must not drift
        assert TAXONOMY_YAML.read_text(encoding="utf-8") == REPO_CONFIG.read_text(encoding="utf-8")
    assert taxonomy.ids == load_taxonomy(TAXONOMY_YAML).ids


def test_shipped_narratives_are_complete(taxonomy: Taxonomy) -> None:
    assert 14 <= len(taxonomy) <= 18
    assert len(set(taxonomy.ids)) == len(taxonomy)
    for narrative in taxonomy:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", narrative.id)
        assert narrative.name and narrative.description.endswith(".")
        assert narrative.keywords and narrative.cues
    for seed_narrative in ("colour-revolutions", "nato-aggression", "deep-state-global-elite",
                           "nazi-ukraine-baltics", "ukraine-aggressor"):
        assert seed_narrative in taxonomy


def test_taxonomy_keywords_exist_in_the_database(taxonomy: Taxonomy, database_tags) -> None:
    from disinfo_clf.text.vocabulary import keyword_key

    vocabulary = {keyword_key(k) for c in database_tags[0] for k in c.keywords}
    vocabulary |= {keyword_key(k) for c in load_review_csv() for k in c.keywords}
    unknown = [k for n in taxonomy for k in n.keywords if keyword_key(k) not in vocabulary]
    assert not unknown, f"keywords that no case uses (typo?): {unknown}"


# --- coverage on the real database --------------------------------------------------------

def test_most_database_cases_get_a_narrative(database_tags) -> None:
    cases, with_title, keywords_only = database_tags
    assert sum(bool(t) for t in with_title) / len(cases) >= 0.85
    assert sum(bool(t) for t in keywords_only) / len(cases) >= 0.85


def test_every_narrative_is_neither_rare_nor_dominant(taxonomy: Taxonomy, database_tags) -> None:
    cases, with_title, _ = database_tags
    counts = Counter(i for tags in with_title for i in tags)
    shares = {i: counts[i] / len(cases) for i in taxonomy.ids}
    assert all(0.02 <= share <= 0.30 for share in shares.values()), shares


# --- tagging --------------------------------------------------------------------------------

def test_keywords_match_case_insensitively_and_across_variants(taxonomy: Taxonomy) -> None:
    assert taxonomy.tag(["nato"]) == taxonomy.tag(["NATO"]) == ["nato-aggression"]
    assert taxonomy.tag(["LNR"]) == taxonomy.tag(["LPR"]) == ["ukraine-aggressor"]
    assert taxonomy.tag(["Skripal"]) == ["skripal-poisoning"]
    assert taxonomy.tag(["RT"]) == ["russophobia"]
    assert taxonomy.tag([" azov "]) == ["nazi-ukraine-baltics"]


def test_nothing_matches_nothing(taxonomy: Taxonomy) -> None:
    assert taxonomy.tag([]) == taxonomy.tag([], text="") == []
    assert taxonomy.tag(["Conspiracy theory", "European Union"], text="The weather is nice today") == []


def test_cues_match_whole_words_only(taxonomy: Taxonomy) -> None:
    assert "colour-revolutions" in taxonomy.tag([], text="The West staged a coup in Kyiv")
    assert "colour-revolutions" not in taxonomy.tag([], text="A couple of journalists met in Kyiv")
    assert taxonomy.tag([], text="NATO troops") == ["nato-aggression"]
    assert taxonomy.tag([], text="Senator Donato spoke") == []


def test_more_signals_come_first(taxonomy: Taxonomy) -> None:
    tags = taxonomy.tag(["NATO", "Colour revolutions", "Euromaidan"], text="A coup in Kyiv")
    assert tags == ["colour-revolutions", "nato-aggression"]
    # a tie is broken by file order: the narrower narrative is listed first
    assert taxonomy.tag(["Russophobia", "MH17"]) == ["mh17", "russophobia"]
    assert [s for _, s in taxonomy.match(["NATO", "Colour revolutions"], text="a coup")] == [2, 1]


def test_wwii_victory_over_fascism_is_not_the_nazi_narrative(taxonomy: Taxonomy) -> None:
    assert taxonomy.tag([], text="The Baltic states refuse to celebrate the victory over fascism") == ["wwii-revisionism"]
    assert taxonomy.tag([], text="Ukraine is ruled by neo-Nazis") == ["nazi-ukraine-baltics"]


def test_seed_texts_tagged(taxonomy: Taxonomy) -> None:
    """Each seed case's claim gets, first, the narrative its debunk names."""
    seeds = [
        # 000: "Western attempts to organise a colour revolution in Belarus"
        ([], "After Ukraine, the same Western scriptwriters tried to organise coup d'état in Belarus "
             "and Kazakhstan. But this was not possible thanks to Russia and the CSTO.",
         "colour-revolutions"),
        # 001, case 1: a classic pro-Kremlin narrative about "colour revolutions"
        (["Colour revolutions", "George Soros", "Euromaidan"],
         "Kazakhstan: The neo-colonial West failed again with a colour revolution thanks to the CSTO",
         "colour-revolutions"),
        # 001, case 2: narrative about NATO enlargement
        ([], "NATO lies blatantly and expands to the East. The West, after the collapse of the Soviet "
             "Union and the collapse of the Warsaw Pact, gave guarantees that NATO would not expand "
             "to the east. It was blatantly lying, and today we see it clearly.",
         "nato-aggression"),
        # 001, case 3: a big conspiracy about a secret, UK-led Deep State
        ([], "UK-led Deep State failed in Kazakhstan due to Russian ultimatum. Back in 1891, a secret "
             "\u201cRound Table\u201d community came into existence aiming to create the worldwide "
             "British empire. They started WWI, brought Hitler to power, and created the financial "
             "apparatus of the the London-led Deep State and its security services.",
         "deep-state-global-elite"),
        # 001, case 4: accusing the Baltic states of sympathies to Nazi/Fascists
        ([], "Lithuania and Latvia refuse to help Belarus in investigation of genocide of Belarusians "
             "during WWII. Belarus sent a request to several countries for legal assistance "
             "investigating the genocide of Belarusians during World War II. Lithuania and Latvia "
             "refused to help Minsk find fascists still hiding abroad guilty of genocide in Belarus",
         "nazi-ukraine-baltics"),
        # 003: a US policy of staging "colour revolutions" (keyword line: Colour revolutions)
        (["Colour revolutions"],
         "Western special services involved in Kazakhstan protests. The degree of organisational, "
         "logistical and operational coordination of the protesters indicates that there is a high "
         "probability foreign funds were used and Western special services were involved.",
         "colour-revolutions"),
        # 004, first claim: Ukraine breaks the ceasefire in Donbas
        ([], "Ukraine continues to stack military equipment near contact lines in the Donbas region. "
             "The country breaks the ceasefire agreement by doing so. Ukraine also interfered with "
             "the OSCE mission to hide this equipment from the organisation's monitoring UAVs.",
         "ukraine-aggressor"),
        # 004, second claim (the debunked one): the colour revolution in Kazakhstan
        ([], "Another attempt of the \"colour revolution\" in Kazakhstan is due to the intervention of "
             "external forces rather than internal problems in the country.",
         "colour-revolutions"),
    ]
    for keywords, text, expected in seeds:
        tags = taxonomy.tag(keywords, text=text)
        assert tags and tags[0] == expected, (text[:60], tags)


def test_seed_debunks_name_their_narrative(taxonomy: Taxonomy) -> None:
    debunks = {
        "colour-revolutions": "This claim is advanced as part of a push suggesting a Western policy of "
                              "staging \u201ccolour revolutions\u201d worldwide with the aim of destabilising Russia.",
        "nato-aggression": "Recurring pro-Kremlin disinformation narrative about NATO enlargement.",
        "nazi-ukraine-baltics": "A recurring accusation from pro-Kremlin media accusing the Baltic "
                                "states of sympathies to Nazi/Fascists.",
        "deep-state-global-elite": "This case frames events in Kazakhstan into a big conspiracy about "
                                   "a secret, UK-led Deep State that dominates the world.",
    }
    for expected, text in debunks.items():
        assert expected in taxonomy.tag([], text=text)


# --- building and validating taxonomies ------------------------------------------------------

def test_in_memory_taxonomy_and_lookup() -> None:
    taxonomy = Taxonomy([Narrative("a-b", "A", "A b.", ("X",), ("foo\\w*",)), Narrative("c", "C", "C.", ("Y",))])
    assert taxonomy.ids == ["a-b", "c"] and taxonomy.get("c").name == "C"
    assert taxonomy.tag(["y"], text="Foobar!") == ["a-b", "c"]
    with pytest.raises(KeyError, match="a-b, c"):
        taxonomy.get("nope")
    with pytest.raises(TaxonomyError, match="appears twice"):
        Taxonomy([Narrative("a", "A", "A."), Narrative("a", "B", "B.")])


def test_round_trip_through_yaml(tmp_path: Path, taxonomy: Taxonomy) -> None:
    import yaml

    path = _write(tmp_path, yaml.safe_dump(taxonomy.to_dict(), allow_unicode=True))
    again = load_taxonomy(path)
    assert again.ids == taxonomy.ids
    assert [n.to_dict() for n in again] == [n.to_dict() for n in taxonomy]


@pytest.mark.parametrize(("text", "message"), [
    ("narratives: [}", "not valid YAML"),
    ("- just a list", "'narratives' list"),
    ("narratives: []", "empty"),
    ("narratives:\n  - id: x\n    name: X\n", r"narrative 'x', field 'description'"),
    ("narratives:\n  - id: Bad Id\n    name: X\n    description: d\n    cues: [a]\n", r"field 'id'.*slug"),
    ("narratives:\n  - id: x\n    name: X\n    description: d\n    cue: [a]\n", r"field 'cue'.*unknown"),
    ("narratives:\n  - id: x\n    name: X\n    description: d\n", "at least one of 'keywords' or 'cues'"),
    ("narratives:\n  - id: x\n    name: X\n    description: d\n    cues: [1945]\n", r"field 'cues', item 1: 1945"),
    ("narratives:\n  - id: x\n    name: X\n    description: d\n    cues: ['a(b']\n", r"narrative 'x', field 'cues'.*'a\(b'.*regular expression"),
    ("narratives:\n  - id: x\n    name: X\n    description: d\n    keywords: NATO\n", r"field 'keywords': must be a list"),
    ("narratives:\n  - {id: x, name: X, description: d, cues: [a]}\n  - {id: x, name: Y, description: e, cues: [b]}\n", "appears twice"),
])
def test_malformed_files_name_file_narrative_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TaxonomyError, match=message) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_taxonomy(tmp_path / "none.yaml")


def test_the_shipped_taxonomy_is_the_configs_file() -> None:
    """configs/narratives.yaml is the single source of truth; the package ships that very file."""
    from disinfo_clf.resources import TAXONOMY_YAML

    configs = Path(__file__).resolve().parents[1] / "configs" / "narratives.yaml"
    assert TAXONOMY_YAML.read_bytes() == configs.read_bytes()


@pytest.mark.parametrize("cue, problem", [("(?<!not )nato", "lookaround"), ("nato(?= troops)", "lookaround"),
                                          (r"(nato)\1", "backreference"), ("(nato", "not a valid regular expression"),
                                          ("(?>nato)", "not a valid regular expression"), ("nato*+", "not a valid")])
def test_cues_that_regular_expressions_in_linear_time_cannot_match_are_refused(cue: str, problem: str) -> None:
    from disinfo_clf.cues import check_cue

    assert problem in (check_cue(cue) or "")
