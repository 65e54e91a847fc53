"""Time-split datasets: ordered periods, no leakage of cases, titles or debunk wording."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import datasets as hf
import pytest

from disinfo_clf.cli import main
from disinfo_clf.data import Case, load_review_csv
from disinfo_clf.text.vocabulary import normalise_key
from disinfo_clf.training.datasets import SplitReport, build_datasets, time_boundaries
from disinfo_clf.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def narratives() -> tuple[hf.DatasetDict, SplitReport]:
    report: list[SplitReport] = []
    return build_datasets("narratives", report=report), report[0]


@pytest.fixture(scope="module")
def roles() -> hf.DatasetDict:
    return build_datasets("roles")


def _dates(ds: hf.Dataset) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in ds["date"]]


@pytest.mark.parametrize("fixture", ["narratives", "roles"])
def test_test_is_the_most_recent_period_and_validation_the_one_before(fixture: str, request: pytest.FixtureRequest) -> None:
    dsd = request.getfixturevalue(fixture)
    dsd = dsd[0] if isinstance(dsd, tuple) else dsd
    assert max(_dates(dsd["train"])) < min(_dates(dsd["validation"]))
    assert max(_dates(dsd["validation"])) < min(_dates(dsd["test"]))
    sizes = {s: len(dsd[s]) for s in dsd}
    total = sum(sizes.values())
    assert 0.10 < sizes["test"] / total < 0.20 and 0.10 < sizes["validation"] / total < 0.20


def test_no_case_or_title_is_in_two_splits(narratives: tuple[hf.DatasetDict, SplitReport]) -> None:
    dsd, _ = narratives
    ids = {s: set(dsd[s]["id"]) for s in dsd}
    titles = {s: {normalise_key(t) for t in dsd[s]["text"]} for s in dsd}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not ids[a] & ids[b]
        assert not titles[a] & titles[b]
    all_texts = [normalise_key(t) for s in dsd for t in dsd[s]["text"]]
    assert len(all_texts) == len(set(all_texts))


def test_narrative_labels_are_the_taxonomy_and_cover_most_cases(narratives: tuple[hf.DatasetDict, SplitReport]) -> None:
    dsd, report = narratives
    ids = load_taxonomy().ids
    assert dsd["train"].features["labels"].feature.names == ids
    labelled = sum(1 for labs in dsd["train"]["labels"] if labs)
    assert labelled / len(dsd["train"]) > 0.8
    assert set(report.label_counts["train"]) == set(ids)
    assert report.sizes == {s: len(dsd[s]) for s in dsd}
    table = report.format_table()
    assert "train" in table and "colour-revolutions" in table and str(report.sizes["test"]) in table


def test_debunk_wording_never_enters_narrative_texts(narratives: tuple[hf.DatasetDict, SplitReport]) -> None:
    dsd, _ = narratives
    texts = {t for s in dsd for t in dsd[s]["text"]}
    debunks = [c.debunk for c in load_review_csv() if len(c.debunk) > 80]
    assert debunks
    assert not any(d in texts for d in debunks)
    claims = {c.claim for c in load_review_csv()}
    assert len(texts & claims) > 1000  # review claims are the texts, not their disproofs


def test_roles_are_claim_and_debunk_sentences_once_each(roles: hf.DatasetDict) -> None:
    assert roles["train"].features["label"].names == ["claim", "debunk"]
    sentences = [t for s in roles for t in roles[s]["text"]]
    assert len(sentences) == len(set(sentences))
    review = load_review_csv()
    claim_text = " ".join(c.claim for c in review)
    row = roles["train"][0]
    assert (row["text"] in claim_text) == (row["label"] == 0)
    counts = {s: sum(roles[s]["label"]) for s in roles}
    assert all(0 < counts[s] < len(roles[s]) for s in roles)


def test_bad_split_fractions_are_refused() -> None:
    dates = [dt.date(2020, 1, d) for d in range(1, 29)]
    with pytest.raises(ValueError, match="test_fraction"):
        time_boundaries(dates, 0.6, 0.5)
    with pytest.raises(ValueError, match="at least 3"):
        time_boundaries(dates[:2], 0.2, 0.2)
    val_start, test_start = time_boundaries(dates, 0.25, 0.25)
    assert dates[0] < val_start < test_start <= dates[-1]


def test_given_cases_are_split_by_date() -> None:
    cases = [
        Case(title=f"NATO expands east, claim {i}", claim=f"NATO broke its promise not to expand east, number {i}.",
             keywords=["NATO"], published=dt.date(2019, 1, 1) + dt.timedelta(days=i), source="mine.csv", row=i)
        for i in range(40)
    ]
    dsd = build_datasets("narratives", cases=cases, test_fraction=0.25, validation_fraction=0.25)
    assert [len(dsd[s]) for s in ("train", "validation", "test")] == [20, 10, 10]
    assert dsd["test"]["id"][0] == "mine.csv#30"
    nato = dsd["train"].features["labels"].feature.str2int("nato-aggression")
    assert all(nato in labs for labs in dsd["train"]["labels"])


def test_data_build_writes_loadable_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "validation" in out and "claim" in out
    narratives = hf.load_from_disk(str(tmp_path / "narratives"))
    roles = hf.load_from_disk(str(tmp_path / "roles"))
    assert set(narratives) == set(roles) == {"train", "validation", "test"}
    assert len(narratives["test"]) > 1000
