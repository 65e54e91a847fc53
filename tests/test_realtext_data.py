"""The shipped real-text corpus (disinfo_clf/resources/data/realtext/): schema, splits and no leakage between them."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

REALTEXT = Path(__file__).resolve().parents[1] / "disinfo_clf" / "resources" / "data" / "realtext"
FIELDS = {"id", "text", "lang", "source", "kind", "topic", "date", "split", "url", "title", "unit", "outlet", "verdict"}
KINDS = {"ordinary", "debunk", "claim", "hard"}
SPLITS = {"train", "dev", "test"}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    out = []
    for path in sorted(REALTEXT.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                rec = json.loads(line)
                rec["_file"] = f"{path.name}:{line_no}"
                out.append(rec)
    assert out, f"no JSONL files under {REALTEXT}"
    return out


def test_every_record_has_the_documented_fields_and_values(records):
    for rec in records:
        where = rec["_file"]
        assert set(rec) - {"_file"} == FIELDS, where
        assert rec["kind"] in KINDS, where
        assert rec["split"] in SPLITS, where
        assert re.fullmatch(r"[a-z]{2}", rec["lang"]), where
        assert rec["topic"] in {"ontopic", "offtopic", None}, where
        assert rec["date"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", rec["date"]), where
        assert rec["text"].strip() and len(rec["text"]) <= 4000, where
        assert rec["text"] == rec["text"].strip() and "<p>" not in rec["text"] and "**" not in rec["text"], where
        assert rec["id"].startswith(rec["source"] + ":"), where
        assert rec["_file"].startswith(rec["source"] + ".jsonl"), where


def test_ids_are_unique_so_none_sits_in_two_splits(records):
    counts = collections.Counter(rec["id"] for rec in records)
    assert [i for i, n in counts.items() if n > 1] == []


def test_no_test_source_is_seen_in_training_or_tuning_unless_split_by_time(records):
    """A test source is test only, or (Wikipedia's Current Events) split by time: its test items all come later."""
    for kind in KINDS:
        test = {r["source"] for r in records if r["kind"] == kind and r["split"] == "test"}
        tuned = {r["source"] for r in records if r["kind"] == kind and r["split"] != "test"}
        for source in test & tuned:
            dates = {split: [r["date"] for r in records if (r["source"], r["kind"]) == (source, kind)
                             and (r["split"] == "test") == (split == "test")] for split in ("test", "tuned")}
            assert all(dates.values()) and None not in dates["test"] + dates["tuned"], (kind, source)
            assert max(dates["tuned"]) < min(dates["test"]), (kind, source)


def test_no_test_text_repeats_a_training_or_dev_text(records):
    def norm(text: str) -> str:
        return " ".join(re.sub(r"[^\w ]+", " ", text.lower()).split())
    seen = {norm(r["text"]) for r in records if r["split"] != "test"}
    assert [r["id"] for r in records if r["split"] == "test" and norm(r["text"]) in seen] == []


def test_a_factcheck_text_and_its_verdict_paragraph_share_a_split(records):
    splits = collections.defaultdict(set)
    for rec in records:
        head, _, tail = rec["id"].rpartition(":")
        if tail in ("text", "verdict"):
            splits[head].add(rec["split"])
    assert splits and all(len(s) == 1 for s in splits.values())


def test_an_ntrex_line_has_one_split_in_every_language(records):
    splits = collections.defaultdict(set)
    for rec in records:
        if rec["source"] == "ntrex":
            splits[rec["id"].rsplit(":", 1)[1]].add(rec["split"])
    assert splits and all(len(s) == 1 for s in splits.values())


def test_test_split_holds_every_kind_and_train_holds_debunks_and_ordinary_text(records):
    assert {r["kind"] for r in records if r["split"] == "test"} == KINDS
    train = collections.Counter(r["kind"] for r in records if r["split"] == "train")
    assert train["debunk"] >= 300 and train["ordinary"] >= 1000


def test_the_shipped_corpus_stays_small():
    assert sum(p.stat().st_size for p in REALTEXT.glob("*.jsonl")) < 6_500_000


def test_load_realtext_filters_by_kind_split_and_unit(records):
    from disinfo_clf.data.realtext import load_realtext

    got = load_realtext(kinds={"debunk"}, splits={"train"}, units={"headline"})
    want = [r for r in records if (r["kind"], r["split"], r["unit"]) == ("debunk", "train", "headline")]
    assert [r["id"] for r in got] == [r["id"] for r in want] and got


def test_a_damaged_realtext_line_is_named_with_its_file_and_line(tmp_path: Path):
    from disinfo_clf.data.realtext import load_realtext

    good = json.dumps({"id": "x:1", "text": "t", "kind": "claim", "split": "train", "unit": "claim"})
    (tmp_path / "mine.jsonl").write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mine\.jsonl, line 2: not a real-text record"):
        load_realtext(directory=tmp_path)
    (tmp_path / "mine.jsonl").write_text(good + "\n" + json.dumps({"id": "x:2", "text": "t"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: .*'kind'"):
        load_realtext(kinds={"claim"}, directory=tmp_path)


def test_role_training_reads_real_fact_check_windows_when_asked():
    """``data.role_realtext_units`` adds each chosen record's windows, labelled with its role; nothing else changes."""
    import numpy as np

    from disinfo_clf.config import ConfigError, TrainingConfig
    from disinfo_clf.data.realtext import load_realtext
    from disinfo_clf.text.sentences import text_windows
    from disinfo_clf.training.evaluation import SplitData
    from disinfo_clf.training.train import _augment_roles

    base = SplitData(texts=["a claim"], gold=np.array([0]), languages=[""])
    config = TrainingConfig(task="role")
    assert _augment_roles(base, None, config, before="").texts == ["a claim"]
    config.data.role_realtext_units = ["headline", "paragraph"]
    out = _augment_roles(base, None, config, before="")
    chosen = load_realtext(kinds={"claim", "debunk"}, splits={"train"}, units={"headline", "paragraph"})
    windows = [(rec["text"][s:e], rec["kind"]) for rec in chosen for s, e in text_windows(rec["text"])]
    assert out.texts == ["a claim"] + [w for w, _ in windows]
    assert out.gold.tolist() == [0] + [1] * len(windows)     # headlines and verdict passages are all debunks
    assert len(windows) > len(chosen)                         # verdict passages span several windows
    config.data.role_realtext_units = ["headlines"]
    with pytest.raises(ConfigError, match=r"role_realtext_units: .* unit 'headlines'; choose among .*headline"):
        _augment_roles(base, None, config, before="")
