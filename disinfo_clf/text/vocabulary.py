"""Canonical spellings of EUvsDisinfo keywords, languages and countries.

The two exports name the same thing in different ways: the vocabulary drifted over the years
("Conspiracy" became "Conspiracy theory", "The West" became "West"), abbreviations sit beside
full names ("EU"/"European Union", "LNR"/"LPR"), the review file's ``language`` column sometimes
holds a country ("Bulgaria" for Bulgarian) and the database lists "Spanish" and "Castilian" side
by side. The tables below were read off the vendored CSVs; the rules around them (whitespace,
typographic quotes, case) catch the rest. This module imports nothing from the rest of the
package so that ``disinfo_clf.taxonomy`` can use it cheaply.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SPACES = re.compile(r"\s+")
_KEY_WORD = re.compile(r"[^\W_]+")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})

# variant (casefolded) -> canonical keyword, as spelled in the newest exports.
KEYWORD_ALIASES: dict[str, str] = {
    "conspiracy": "Conspiracy theory",
    "conspiracy theories": "Conspiracy theory",
    "the west": "West",
    "eu": "European Union",
    "un": "United Nations",
    "world war 2": "WWII",
    "world war ii": "WWII",
    "second world war": "WWII",
    "world war 1": "WWI",
    "world war iii": "WWIII",
    "lnr": "LPR",
    "dnr": "DPR",
    "azov": "Azov Battalion",
    "rt": "Russia Today (RT)",
    "russia today": "Russia Today (RT)",
    "skripal": "Sergei Skripal",
    "islam": "Muslim/Islam",
    "international criminal court": "ICC",
    "mediterranean sea": "Mediterranean",
    "intelligence services": "Secret services",
    "eeu": "Eurasian Economic Union",
    "eurasian economic union": "Eurasian Economic Union",
    "tatars": "Crimean Tatars",
    # misspellings of names
    "bigniew brzezinski": "Zbigniew Brzezinski",
    "martin schultz": "Martin Schulz",
    "nikita krushchev": "Nikita Khrushchev",
    "erdogan": "Recep Tayyip Erdoğan",
    "recep tayyip erdogan": "Recep Tayyip Erdoğan",
    "covid-19": "coronavirus",
    "covid": "coronavirus",
}

# Media outlets and platforms that EUvsDisinfo also uses as keywords (canonical spellings).
OUTLET_KEYWORDS: frozenset[str] = frozenset({
    "Sputnik", "Russia Today (RT)", "TV Zvezda", "BBC", "CNN", "DW", "Al Jazeera",
    "The New York Times", "The Guardian", "The Financial Times", "The Daily Telegraph",
    "The Independent", "The Wall Street Journal", "Die Welt", "Le Figaro", "Euronews",
    "Facebook", "Twitter", "YouTube", "Google", "Wikileaks",
})

# Language names (casefolded) -> canonical language. Covers the database's "Castilian" and the
# review file's country names in its ``language`` column.
LANGUAGE_ALIASES: dict[str, str] = {
    "castilian": "Spanish",
    "moldavian": "Romanian",
    "moldovan": "Romanian",
    "latin": "Latvian",  # one Sputnik Latvia row; Latin is no EUvsDisinfo language
}

# Country (casefolded) -> its main language, for a country written where a language belongs.
COUNTRY_LANGUAGES: dict[str, str] = {
    "albania": "Albanian", "armenia": "Armenian", "austria": "German",
    "azerbaijan": "Azerbaijani", "belarus": "Belarusian", "bosnia and herzegovina": "Bosnian",
    "bulgaria": "Bulgarian", "croatia": "Croatian", "czech republic": "Czech",
    "czechia": "Czech", "estonia": "Estonian", "finland": "Finnish", "france": "French",
    "georgia": "Georgian", "germany": "German", "greece": "Greek", "hungary": "Hungarian",
    "italy": "Italian", "latvia": "Latvian", "lithuania": "Lithuanian",
    "moldova": "Romanian", "montenegro": "Montenegrin", "north macedonia": "Macedonian",
    "norway": "Norwegian", "poland": "Polish", "romania": "Romanian", "russia": "Russian",
    "serbia": "Serbian", "slovakia": "Slovak", "spain": "Spanish", "sweden": "Swedish",
    "the netherlands": "Dutch", "netherlands": "Dutch", "ukraine": "Ukrainian",
    "uk": "English", "us": "English", "venezuela": "Spanish",
}

COUNTRY_ALIASES: dict[str, str] = {
    "the west": "West",
    "the vatican": "Vatican",
    "fyrom": "North Macedonia",
    "kirgizstan": "Kyrgyzstan",
    "georgian region of south ossetia": "Georgia",
    "european union": "EU",
}


def clean(value: str) -> str:
    """Trim, collapse whitespace, NFC-normalise and straighten typographic quotes and dashes."""
    value = unicodedata.normalize("NFC", value).translate(_QUOTES)
    return _SPACES.sub(" ", value).strip()


def normalise_key(text: str) -> str:
    """The lowercase letters-and-digits words of ``text`` joined by single spaces, for spotting repeats."""
    return " ".join(_KEY_WORD.findall(text.casefold()))


def canonical_keyword(keyword: str) -> str:
    """The canonical spelling of an EUvsDisinfo keyword ("Conspiracy" -> "Conspiracy theory")."""
    cleaned = clean(keyword)
    return KEYWORD_ALIASES.get(cleaned.casefold(), cleaned)


def keyword_key(keyword: str) -> str:
    """A case-insensitive, variant-aware matching key for a keyword."""
    return canonical_keyword(keyword).casefold()


def canonical_keywords(keywords: Iterable[str]) -> list[str]:
    """Canonical keywords, first occurrence kept, blanks and variant repeats dropped."""
    return _unique(canonical_keyword(k) for k in keywords)


def is_outlet_keyword(keyword: str) -> bool:
    """Whether a keyword names a media outlet or platform rather than a topic."""
    return canonical_keyword(keyword) in OUTLET_KEYWORDS


def canonical_language(language: str) -> str:
    """The canonical language name ("Castilian" -> "Spanish", "Bulgaria" -> "Bulgarian")."""
    cleaned = clean(language)
    key = cleaned.casefold()
    if key in LANGUAGE_ALIASES:
        return LANGUAGE_ALIASES[key]
    return COUNTRY_LANGUAGES.get(key, cleaned)


def canonical_languages(languages: Iterable[str]) -> list[str]:
    """Canonical languages, order kept, repeats ("Spanish+Castilian") merged."""
    return _unique(canonical_language(lang) for lang in languages)


def canonical_country(country: str) -> str:
    """The canonical country or region name ("The West" -> "West", "FYROM" -> "North Macedonia")."""
    cleaned = clean(country)
    return COUNTRY_ALIASES.get(cleaned.casefold(), cleaned)


def canonical_countries(countries: Iterable[str]) -> list[str]:
    """Canonical countries, order kept, repeats merged."""
    return _unique(canonical_country(c) for c in countries)


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.casefold()
        if value and key not in seen:
            seen.add(key)
            out.append(value)
    return out
