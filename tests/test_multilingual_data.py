"""The translated development and test sets (resources/data/multilingual/claims_*.jsonl).

They carry the project's multilingual numbers: dev is used for model selection and tuning,
test only for reporting. These tests check what those uses rely on: every item is present in
all eight languages, each text is in the language it claims, dev and test never share a case,
and each item comes from the time period its split stands for.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from disinfo_clf.config import load_config
from disinfo_clf.training.datasets import build_datasets
from disinfo_clf.taxonomy import load_taxonomy
from disinfo_clf.text.language import detect_languages

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "disinfo_clf" / "resources" / "data" / "multilingual"
SPLITS = {"dev": "validation", "test": "test"}
LANGS = ("en", "ru", "uk", "de", "es", "fr", "pl", "bg")
KEYS = {"id", "case_id", "url", "date", "narratives", "role", "lang", "text", "en"}
ITEM_KEYS = ("case_id", "url", "date", "narratives", "role", "en")
SIZES = {"dev": {"claim": 50, "debunk": 25}, "test": {"claim": 100, "debunk": 40}}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - the message is what matters
            raise AssertionError(f"{path}, line {n}: not JSON ({exc})") from exc
    return rows


@pytest.fixture(scope="module")
def labels() -> list[str]:
    return load_taxonomy().ids


@pytest.fixture(scope="module")
def sets() -> dict[str, list[dict[str, Any]]]:
    return {split: _read_jsonl(DATA / f"claims_{split}.jsonl") for split in SPLITS}


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict[str, Any]]]:
    return {split: _read_jsonl(DATA / f"sample_{split}.jsonl") for split in SPLITS}


def _items(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    by_id: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        assert row["lang"] not in by_id[row["id"]], f"{row['id']} has two {row['lang']} lines"
        by_id[row["id"]][row["lang"]] = row
    return by_id


@pytest.mark.parametrize("split", SPLITS)
def test_lines_have_the_documented_fields(sets: dict[str, list[dict[str, Any]]], labels: list[str], split: str) -> None:
    ids = set(labels)
    for n, row in enumerate(sets[split], 1):
        where = f"claims_{split}.jsonl, line {n}"
        assert set(row) == KEYS, where
        assert row["id"].startswith(f"{split}-"), where
        assert row["lang"] in LANGS and row["role"] in ("claim", "debunk"), where
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] and row["text"], where
        dt.date.fromisoformat(row["date"])
        assert set(row["narratives"]) <= ids, f"{where}: narratives {row['narratives']} not in the taxonomy"
        assert row["url"] is None or row["url"].startswith("https://euvsdisinfo.eu/"), where


@pytest.mark.parametrize("split", SPLITS)
def test_every_item_is_there_in_all_eight_languages(
    sets: dict[str, list[dict[str, Any]]], samples: dict[str, list[dict[str, Any]]], split: str
) -> None:
    items = _items(sets[split])
    sample = {s["id"]: s for s in samples[split]}
    assert set(items) == set(sample), "claims file and sample file hold different items"
    for item_id, by_lang in items.items():
        assert set(by_lang) == set(LANGS), f"{item_id}: languages {sorted(by_lang)}"
        for row in by_lang.values():
            assert {k: row[k] for k in ITEM_KEYS} == {k: sample[item_id][k] for k in ITEM_KEYS}, item_id
        assert by_lang["en"]["text"] == by_lang["en"]["en"], item_id
    roles = Counter(s["role"] for s in sample.values())
    assert roles == Counter(SIZES[split])


@pytest.mark.parametrize("split", SPLITS)
def test_translations_are_not_copies_of_the_english(sets: dict[str, list[dict[str, Any]]], split: str) -> None:
    shares: dict[str, list[float]] = defaultdict(list)
    for row in sets[split]:
        if row["lang"] == "en":
            continue
        assert row["text"].casefold() != row["en"].casefold(), f"{row['id']} {row['lang']} is the English text"
        english = set(re.findall(r"\w+", row["en"].casefold()))
        words = re.findall(r"\w+", row["text"].casefold())
        share = sum(w in english for w in words) / len(words)
        assert share <= 0.75, f"{row['id']} {row['lang']}: {share:.0%} of its words are the English source's"
        shares[row["lang"]].append(share)
    for lang, values in shares.items():
        assert sum(values) / len(values) < 0.2, f"{lang}: translations reuse the English wording too often"


@pytest.mark.parametrize("split", SPLITS)
def test_texts_are_in_the_language_they_claim(sets: dict[str, list[dict[str, Any]]], split: str) -> None:
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for row, detected in zip(sets[split], detect_languages([row["text"] for row in sets[split]])):
        found[row["lang"]][detected or "?"] += 1
    agree = sum(found[lang][lang] for lang in found) / len(sets[split])
    assert agree >= 0.95, f"detector agrees on only {agree:.1%}: {dict(found)}"
    for lang, counts in found.items():
        total = sum(counts.values())
        assert counts[lang] / total >= 0.9, f"{lang}: detected as {dict(counts)}"
    # The close pairs: Ukrainian and Bulgarian must not read as Russian, nor Russian as either.
    for lang in ("uk", "bg"):
        assert found[lang]["ru"] / sum(found[lang].values()) <= 0.05, f"{lang} detected as ru: {dict(found[lang])}"
        assert found["ru"][lang] == 0, f"ru detected as {lang}"


def test_dev_and_test_share_no_case(sets: dict[str, list[dict[str, Any]]]) -> None:
    dev, test = sets["dev"], sets["test"]
    assert not {r["case_id"] for r in dev} & {r["case_id"] for r in test}
    assert not {r["en"] for r in dev} & {r["en"] for r in test}
    for split, rows in sets.items():
        claims = [r["case_id"] for r in rows if r["lang"] == "en" and r["role"] == "claim"]
        assert len(claims) == len(set(claims)), f"{split}: a case appears twice"


@pytest.fixture(scope="module")
def periods() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Rows of the narrative and role datasets per split, split as configs/linear.yaml and
    configs/role-linear.yaml split them."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task, config in (("narratives", "linear.yaml"), ("roles", "role-linear.yaml")):
        data = load_config(ROOT / "configs" / config).data
        dsd = build_datasets(
            task, review_csv=data.review_csv, database_csv=data.database_csv, test_fraction=data.test_fraction,
            validation_fraction=data.validation_fraction, max_cases=data.max_cases,
        )
        out[task] = {split: dsd[split].to_pandas().to_dict("records") for split in SPLITS.values()}
    return out


@pytest.mark.parametrize("split", SPLITS)
def test_items_come_from_the_period_of_their_split(
    samples: dict[str, list[dict[str, Any]]], periods: dict[str, Any], labels: list[str], split: str
) -> None:
    period = SPLITS[split]
    claims = {r["id"]: r for r in periods["narratives"][period]}
    debunks = {(r["id"], r["text"]) for r in periods["roles"][period] if r["label"] == 1}
    dates = sorted(r["date"] for r in periods["narratives"][period])
    for item in samples[split]:
        if item["role"] == "claim":
            row = claims.get(item["case_id"])
            assert row is not None, f"{item['id']}: case {item['case_id']} is not in the {period} period"
            assert row["text"] == item["en"] and row["date"] == item["date"], item["id"]
            assert sorted(labels[int(k)] for k in row["labels"]) == item["narratives"], item["id"]
            assert dates[0] <= item["date"] <= dates[-1]
        else:
            assert (item["case_id"], item["en"]) in debunks, f"{item['id']}: not a {period} debunk sentence"


@pytest.mark.parametrize("split", SPLITS)
def test_every_narrative_of_the_period_has_two_claims(
    samples: dict[str, list[dict[str, Any]]], periods: dict[str, Any], labels: list[str], split: str
) -> None:
    in_period = Counter(labels[int(k)] for r in periods["narratives"][SPLITS[split]] for k in r["labels"])
    in_sample = Counter(n for item in samples[split] if item["role"] == "claim" for n in item["narratives"])
    thin = {n: in_sample[n] for n, c in in_period.items() if in_sample[n] < min(2, c)}
    assert not thin, f"narratives with fewer than two {split} claims: {thin}"


@pytest.fixture(scope="module")
def sampler() -> Any:
    path = ROOT / "scripts" / "make_translation_sample.py"
    spec = importlib.util.spec_from_file_location("make_translation_sample", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_claim_sampler_covers_every_label_twice_and_is_deterministic(sampler: Any) -> None:
    import random

    rows = [{"id": f"c{i}", "date": f"2020-01-{1 + i % 28:02d}", "labels": [0] if i % 10 else [0, 1 + i % 3],
             "text": f"claim number {i} about topic {i % 7} " + "x" * (i % 5)} for i in range(200)]
    rows.append({"id": "rare", "date": "2020-02-01", "text": "the only case of the rare narrative", "labels": [4]})
    names = ["common", "a", "b", "c", "rare"]
    first = sampler.sample_claims(rows, 12, names, random.Random("seed"))
    again = sampler.sample_claims(list(reversed(rows)), 12, names, random.Random("seed"))
    assert first == again, "the draw depends on the input order"
    assert len(first) == 12 and len({r["id"] for r in first}) == 12
    counts = Counter(lab for r in first for lab in r["labels"])
    assert all(counts[k] >= 2 for k in (0, 1, 2, 3)) and counts[4] == 1
    assert first != sampler.sample_claims(rows, 12, names, random.Random("other seed"))


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("NATO is not forcing Georgia to join the alliance.", True),
        ("There is no evidence that the Kherson region is having electricity shortages.", True),
        ("Czech translation of the RT disinformation article mentioned above.", False),
        ("Moreover, the video was made by Iranian Press TV, which is dubious.", False),
        ("Ukraine's GDP growth is accelerating: http://bit.ly/2nWvQ3N and more.", False),
        ("No evidence.", False),
    ],
)
def test_debunk_filter_keeps_only_stand_alone_refutations(sampler: Any, sentence: str, expected: bool) -> None:
    assert sampler.reads_as_refutation(sentence) is expected
