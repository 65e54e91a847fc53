"""The taxonomy of known pro-Kremlin disinformation narratives, and keyword/cue tagging.

A taxonomy is a YAML file (the shipped one is ``configs/narratives.yaml``, whose header documents
the format). Each narrative lists the EUvsDisinfo keywords that imply it and lowercase cue
patterns looked for in text. :meth:`Taxonomy.tag` turns a case's keywords and text into
narrative ids, most specific first:

1. more matching signals first, where a signal is one distinct matching keyword or one cue of
   the narrative found in the text (a cue found twice counts once);
2. on a tie, the narrative listed earlier in the file first; the file lists narrow narratives
   (single events such as MH17) before broad ones (Russophobia).
"""
from __future__ import annotations

import functools

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cues import CueMatcher, check_cue
from .text.vocabulary import keyword_key
from .resources import TAXONOMY_YAML

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FIELDS = ("id", "name", "description", "keywords", "cues")
_TOP_FIELDS = ("version", "narratives")


class TaxonomyError(ValueError):
    """A malformed taxonomy file; the message names the file, narrative and field."""


@dataclass(frozen=True)
class Narrative:
    """One narrative: a stable slug ``id``, a name, a one-sentence description, implying
    EUvsDisinfo ``keywords`` and text ``cues`` (regular expressions); a narrative defined by
    users (see :mod:`disinfo_clf.narrative_files`) also has ``examples``, texts stating it in any
    language, and ``counter_examples``, texts on its topic that must not count."""

    id: str
    name: str
    description: str
    keywords: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()

    @property
    def has_examples(self) -> bool:
        """Whether it is defined by examples (scored by the few-shot head, not a trained model)."""
        return bool(self.examples)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready data (``examples`` and ``counter_examples`` only when given)."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "description": self.description,
                                "keywords": list(self.keywords), "cues": list(self.cues)}
        if self.examples:
            data["examples"] = list(self.examples)
        if self.counter_examples:
            data["counter_examples"] = list(self.counter_examples)
        return data


class Taxonomy:
    """An ordered set of narratives that tags keywords and text with narrative ids."""

    def __init__(self, narratives: Iterable[Narrative], source: str = "<memory>", check_cues: bool = True) -> None:
        """``check_cues=False`` skips compiling every cue up front (seconds for the shipped file), for
        narratives already checked; the cue matcher is built on first use either way."""
        self.narratives: list[Narrative] = list(narratives)
        self.source = source
        seen: set[str] = set()
        for narrative in self.narratives:
            if narrative.id in seen:
                raise TaxonomyError(f"{source}: narrative id {narrative.id!r} appears twice")
            seen.add(narrative.id)
        self._by_id = {n.id: n for n in self.narratives}
        self._keyword_index: dict[str, list[int]] = {}
        for index, narrative in enumerate(self.narratives):
            for keyword in narrative.keywords:
                owners = self._keyword_index.setdefault(keyword_key(keyword), [])
                if index not in owners:
                    owners.append(index)
        if check_cues:
            for narrative in self.narratives:
                _check_cues(narrative, source)

    @functools.cached_property
    def cue_matcher(self) -> CueMatcher:
        """Finds the narratives' cue phrases in text (also the linear model's cue features)."""
        return CueMatcher({n.id: n.cues for n in self.narratives})

    @property
    def ids(self) -> list[str]:
        """Narrative ids in file order (the label order of models trained on this taxonomy)."""
        return [n.id for n in self.narratives]

    def get(self, narrative_id: str) -> Narrative:
        """The narrative with this id; KeyError listing the known ids otherwise."""
        try:
            return self._by_id[narrative_id]
        except KeyError:
            raise KeyError(f"unknown narrative {narrative_id!r}; known: {', '.join(self.ids)}") from None

    def __len__(self) -> int:
        return len(self.narratives)

    def __iter__(self) -> Iterator[Narrative]:
        return iter(self.narratives)

    def __contains__(self, narrative_id: object) -> bool:
        return narrative_id in self._by_id

    def match(self, keywords: Iterable[str] = (), text: str | None = None) -> list[tuple[str, int]]:
        """``(narrative id, number of signals)`` for every narrative with a signal, most
        specific first (see the module docstring)."""
        signals = [0] * len(self.narratives)
        for key in {keyword_key(k) for k in keywords if k and k.strip()}:
            for index in self._keyword_index.get(key, ()):
                signals[index] += 1
        if text:
            for index, count in self.cue_matcher.signals(text).items():
                signals[index] += count
        ranked = sorted((i for i, s in enumerate(signals) if s), key=lambda i: (-signals[i], i))
        return [(self.narratives[i].id, signals[i]) for i in ranked]

    def tag(self, keywords: Iterable[str] = (), text: str | None = None) -> list[str]:
        """Narrative ids implied by EUvsDisinfo ``keywords`` (any case or variant spelling)
        and cue phrases in ``text``, most specific first; empty when nothing matches."""
        return [narrative_id for narrative_id, _ in self.match(keywords, text)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML file's layout."""
        return {"version": 1, "narratives": [n.to_dict() for n in self.narratives]}


def load_taxonomy(path: str | Path | None = None, check_cues: bool = True) -> Taxonomy:
    """Read a taxonomy YAML file (default: the shipped ``narratives.yaml``).

    Raises TaxonomyError (a ValueError) naming the file, narrative and field when the file is
    malformed, and FileNotFoundError when it does not exist.
    """
    path = Path(path) if path is not None else TAXONOMY_YAML
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("narratives"), list):
        raise TaxonomyError(f"{where}: expected a mapping with a 'narratives' list at the top level")
    unknown = sorted(set(data) - set(_TOP_FIELDS))
    if unknown:
        raise TaxonomyError(f"{where}: unknown top-level field {unknown[0]!r}; allowed: {', '.join(_TOP_FIELDS)}")
    narratives = [_narrative(entry, where, number) for number, entry in enumerate(data["narratives"], start=1)]
    if not narratives:
        raise TaxonomyError(f"{where}: 'narratives' is empty; list at least one narrative")
    return Taxonomy(narratives, source=where, check_cues=check_cues)


def _narrative(entry: Any, where: str, number: int) -> Narrative:
    label = f"{where}, narrative #{number}"
    if not isinstance(entry, dict):
        raise TaxonomyError(f"{label}: expected a mapping with fields {', '.join(_FIELDS)}")
    if isinstance(entry.get("id"), str):
        label = f"{where}, narrative {entry['id']!r}"
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise TaxonomyError(f"{label}, field {unknown[0]!r}: unknown field; allowed: {', '.join(_FIELDS)}")
    for name in ("id", "name", "description"):
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            raise TaxonomyError(f"{label}, field {name!r}: required, must be a non-empty string")
    if not _SLUG.match(entry["id"]):
        raise TaxonomyError(f"{label}, field 'id': must be a lowercase slug such as 'nato-aggression'")
    lists = {}
    for name in ("keywords", "cues"):
        value = entry.get(name) or []
        if not isinstance(value, list):
            raise TaxonomyError(f"{label}, field {name!r}: must be a list of strings")
        for item_number, item in enumerate(value, start=1):
            if not isinstance(item, str) or not item.strip():
                raise TaxonomyError(
                    f"{label}, field {name!r}, item {item_number}: {item!r} is not a non-empty "
                    "string (put cues and keywords in 'single quotes')"
                )
        lists[name] = tuple(v.strip() for v in value)
    if not lists["keywords"] and not lists["cues"]:
        raise TaxonomyError(f"{label}: give at least one of 'keywords' or 'cues'")
    return Narrative(entry["id"], entry["name"].strip(), " ".join(entry["description"].split()),
                     lists["keywords"], lists["cues"])


def _check_cues(narrative: Narrative, where: str) -> None:
    for cue in narrative.cues:
        problem = check_cue(cue)
        if problem:
            raise TaxonomyError(f"{where}, narrative {narrative.id!r}, field 'cues': {cue!r} {problem}")
