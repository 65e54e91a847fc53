"""Language detection: the shipped fastText model, read text by text, never failing a prediction."""
from __future__ import annotations

import pytest

from disinfo_clf.text import language
from disinfo_clf.text.language import detect_language, detect_languages


def test_languages_and_close_pairs_are_told_apart() -> None:
    texts = {
        "en": "The government announced new sanctions against several banks on Tuesday.",
        "ru": "Правительство во вторник объявило о новых санкциях против нескольких банков.",
        "uk": "Уряд у вівторок оголосив про нові санкції проти кількох банків.",
        "bg": "Правителството обяви във вторник нови санкции срещу няколко банки.",
        "de": "Die Regierung kündigte am Dienstag neue Sanktionen gegen mehrere Banken an.",
        "pl": "Rząd ogłosił we wtorek nowe sankcje wobec kilku banków.",
    }
    assert detect_languages(list(texts.values())) == list(texts)
    assert detect_language(texts["uk"]) == "uk"


def test_unreadable_text_gets_no_language_and_never_an_error() -> None:
    assert detect_languages(["", "   \n\t", "😀😀😀", "12345 67890"]) == [None, None, None, None]
    # A lone surrogate (half an emoji from a broken feed) is read as "?": the rest still counts.
    assert detect_language("Half an emoji \ud83d, and the rest of this sentence is plainly English.") == "en"
    # Shouting is read as the language it is (the model alone reads these as Russian and Danish).
    assert detect_languages(["SANCTIONS HURT EUROPE MORE THAN RUSSIA", "WAR IN UKRAINE: WHAT WE KNOW"]) == ["en", "en"]
    assert detect_languages([]) == []


def test_a_damaged_language_model_is_named_with_its_fix(tmp_path, monkeypatch) -> None:
    broken = tmp_path / "lid.176.ftz"
    broken.write_bytes(b"not a fastText model")
    monkeypatch.setattr(language, "LANGID_MODEL", broken)
    language._detector.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="lid.176.ftz.*reinstall disinfo-clf"):
            detect_language("some text")
    finally:
        language._detector.cache_clear()


def test_doctor_checks_the_shipped_language_model(tmp_path, monkeypatch) -> None:
    from disinfo_clf import doctor

    assert doctor._language_model().ok
    damaged = tmp_path / "lid.176.ftz"
    data = bytearray(language.LANGID_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(doctor, "LANGID_MODEL", damaged)
    check = doctor._language_model()
    assert not check.ok and "damaged" in check.detail and "reinstall disinfo-clf" in check.detail
