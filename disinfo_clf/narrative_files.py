"""Narratives of one's own: YAML files that define narratives by a name, a description and examples.

A narratives file has the layout of ``configs/narratives.yaml`` plus two fields per narrative::

    replace: false        # optional; true: the file is a whole taxonomy of its own
    narratives:
      - id: war-west-provoked          # lowercase slug, unique (also against the shipped ids)
        name: The West provoked the war
        description: NATO expansion forced Russia to invade Ukraine.
        keywords: []                   # optional, as in configs/narratives.yaml
        cues: []                       # optional, as in configs/narratives.yaml
        examples:                      # required: texts stating the narrative, any language
          - NATO pushed east until Russia had no choice but to act.
        counter_examples:              # optional: same-topic texts that must NOT count
          - NATO did not expand by force; countries applied to join.

By default a file *adds* its narratives to the shipped taxonomy; with ``replace: true`` it
stands alone. :func:`load_user_narratives` reads a file (or takes a :class:`Taxonomy` or a list
of :class:`Narrative`) and returns the combined taxonomy; the narratives with examples in it
(``narrative.has_examples``) are the ones a few-shot head scores
(:class:`disinfo_clf.models.prototypes.PrototypeHead`).

A bad file raises :class:`NarrativeFileError` (a ``ValueError``) naming the file, the line and
the field, and saying how to fix it.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .taxonomy import Narrative, Taxonomy, TaxonomyError, _check_cues, load_taxonomy, _SLUG

_FIELDS = ("id", "name", "description", "keywords", "cues", "examples", "counter_examples")
_TOP_FIELDS = ("version", "replace", "narratives")
_STR = "tag:yaml.org,2002:str"


class NarrativeFileError(TaxonomyError):
    """A malformed narratives file; the message names the file, line and field and the fix."""


NarrativeSource = str | Path | Taxonomy | Sequence[Narrative]
"""What :func:`load_user_narratives` reads: a YAML path, a whole taxonomy, or a list of narratives."""


def load_user_narratives(source: NarrativeSource, base: Taxonomy | None = None,
                         replace: bool | None = None) -> Taxonomy:
    """The taxonomy ``source`` defines, added to ``base`` (default: the shipped taxonomy).

    ``source`` is a path to a narratives YAML file (see the module docstring), a
    :class:`Taxonomy` (taken as it is: a whole taxonomy, ``base`` is ignored), or a list of
    :class:`Narrative` (added to ``base``). ``replace`` overrides the file's ``replace:`` field
    (for a list: ``True`` makes it stand alone). Narratives from a file or a list must have
    examples; ``narrative.has_examples`` tells the user-defined ones in the result.

    Raises :class:`NarrativeFileError` naming the file, line and field for a malformed file or
    an id already used, and FileNotFoundError when the file does not exist.
    """
    if isinstance(source, Taxonomy):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"narratives file {str(path)!r} does not exist")
        narratives, file_replace, lines = _read_file(path)
        where = str(path)
    elif isinstance(source, Sequence) and all(isinstance(n, Narrative) for n in source):
        narratives, file_replace, where = list(source), False, "<narratives list>"
        lines = {}
        for number, narrative in enumerate(narratives, start=1):
            if not narrative.examples:
                raise NarrativeFileError(f"{where}, narrative #{number} {narrative.id!r}, field 'examples': "
                                         "no examples; give at least one text stating the narrative")
    else:
        raise TypeError(f"narratives is {type(source).__name__}: pass a YAML file path, a Taxonomy or a list of Narrative")
    if not narratives:
        raise NarrativeFileError(f"{where}: 'narratives' is empty; list at least one narrative")
    standalone = file_replace if replace is None else replace
    base_narratives: list[Narrative] = [] if standalone else list(base if base is not None else _shipped())
    taken = {n.id: getattr(base, "source", "the shipped taxonomy") for n in base_narratives}
    for narrative in narratives:
        if narrative.id in taken:
            line = lines.get(narrative.id)
            at = f", line {line}" if line else ""
            origin = "an earlier narrative of this file" if taken[narrative.id] == where else f"the narratives of {taken[narrative.id]}"
            raise NarrativeFileError(
                f"{where}{at}, narrative {narrative.id!r}, field 'id': the id is already used by {origin}; "
                "choose another id, or put 'replace: true' at the top to stand alone")
        taken[narrative.id] = where
    for narrative in narratives:
        _check_cues(narrative, where)
    return Taxonomy([*base_narratives, *narratives], source=where, check_cues=False)


@functools.lru_cache(maxsize=1)
def _shipped() -> Taxonomy:
    return load_taxonomy(check_cues=False)  # the shipped cues are checked by its tests; compiling them costs seconds


def user_narratives(taxonomy: Taxonomy) -> list[Narrative]:
    """The narratives of ``taxonomy`` defined by examples, in taxonomy order."""
    return [n for n in taxonomy if n.has_examples]


def _read_file(path: Path) -> tuple[list[Narrative], bool, dict[str, int]]:
    """The narratives of a file, its ``replace`` flag and the line of each narrative's id."""
    where = str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise NarrativeFileError(f"{where}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise NarrativeFileError(f"{where}: not UTF-8 text; save the file as UTF-8") from None
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise NarrativeFileError(f"{where}, line {line}: expected a mapping with a 'narratives' list at the top level")
    top = _mapping(root, where, "top level", _TOP_FIELDS)
    replace = False
    if "replace" in top:
        node = top["replace"][1]
        value = _scalar(node)
        if not isinstance(value, bool):
            raise NarrativeFileError(f"{where}, line {_line(node)}, field 'replace': must be true or false")
        replace = value
    if "narratives" not in top:
        raise NarrativeFileError(f"{where}, line {_line(root)}: no 'narratives' list at the top level")
    items = top["narratives"][1]
    if not isinstance(items, yaml.SequenceNode):
        raise NarrativeFileError(f"{where}, line {_line(items)}, field 'narratives': must be a list of narratives")
    narratives, lines = [], {}
    for number, item in enumerate(items.value, start=1):
        narrative = _narrative(item, where, number)
        if narrative.id in lines:
            raise NarrativeFileError(
                f"{where}, line {_line(_mapping(item, where, '', _FIELDS)['id'][1])}, narrative {narrative.id!r}, "
                f"field 'id': the id appears twice (first on line {lines[narrative.id]}); give each narrative its own id")
        lines[narrative.id] = _line(_mapping(item, where, "", _FIELDS)["id"][1])
        narratives.append(narrative)
    return narratives, replace, lines


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _mapping(node: yaml.Node, where: str, label: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """``{key: (key node, value node)}``, refusing repeated and unknown keys."""
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or key not in allowed:
            raise NarrativeFileError(f"{where}, line {_line(key_node)}{label}, field {key!r}: unknown field; "
                                     f"allowed: {', '.join(allowed)}")
        if key in out:
            raise NarrativeFileError(f"{where}, line {_line(key_node)}{label}, field {key!r}: given twice "
                                     f"(first on line {_line(out[key][0])}); keep one")
        out[key] = (key_node, value_node)
    return out


def _narrative(item: yaml.Node, where: str, number: int) -> Narrative:
    if not isinstance(item, yaml.MappingNode):
        raise NarrativeFileError(f"{where}, line {_line(item)}, narrative #{number}: expected a mapping with fields "
                                 f"{', '.join(_FIELDS)}")
    label = f", narrative #{number}"
    id_node = dict((k.value, v) for k, v in item.value if isinstance(k, yaml.ScalarNode)).get("id")
    if isinstance(id_node, yaml.ScalarNode) and id_node.tag == _STR and id_node.value.strip():
        label = f", narrative {id_node.value!r}"
    fields = _mapping(item, where, label, _FIELDS)
    values: dict[str, Any] = {}
    for name in ("id", "name", "description"):
        if name not in fields:
            raise NarrativeFileError(f"{where}, line {_line(item)}{label}, field {name!r}: missing; "
                                     "every narrative needs an id, a name and a description")
        node = fields[name][1]
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value.strip()):
            raise NarrativeFileError(f"{where}, line {_line(node)}{label}, field {name!r}: must be a non-empty "
                                     "string (put it in quotes if YAML reads it as a number or date)")
        values[name] = " ".join(node.value.split())
    if not _SLUG.match(values["id"]):
        raise NarrativeFileError(f"{where}, line {_line(fields['id'][1])}{label}, field 'id': {values['id']!r} must be "
                                 "a lowercase slug such as 'war-west-provoked'")
    for name in ("keywords", "cues", "examples", "counter_examples"):
        values[name] = _texts(fields.get(name), name, where, label, item)
    if not values["examples"]:
        line = _line(fields["examples"][1]) if "examples" in fields else _line(item)
        raise NarrativeFileError(f"{where}, line {line}{label}, field 'examples': no examples; give at least one "
                                 "text stating the narrative (five or more work better)")
    both = set(values["examples"]) & set(values["counter_examples"])
    if both:
        raise NarrativeFileError(f"{where}, line {_line(fields['counter_examples'][1])}{label}, field 'counter_examples': "
                                 f"{sorted(both)[0][:60]!r} is also an example; a text cannot be both")
    return Narrative(values["id"], values["name"], values["description"], values["keywords"], values["cues"],
                     values["examples"], values["counter_examples"])


def _texts(pair: tuple[yaml.Node, yaml.Node] | None, name: str, where: str, label: str,
           item: yaml.Node) -> tuple[str, ...]:
    """A list field's non-empty strings, stripped, in file order."""
    if pair is None:
        return ()
    node = pair[1]
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise NarrativeFileError(f"{where}, line {_line(node)}{label}, field {name!r}: must be a list of texts "
                                 "(one '- text' per line)")
    out = []
    for number, element in enumerate(node.value, start=1):
        if isinstance(element, yaml.ScalarNode) and element.tag == "tag:yaml.org,2002:null":
            element = yaml.ScalarNode(_STR, "", element.start_mark, element.end_mark)
        if not (isinstance(element, yaml.ScalarNode) and element.tag == _STR):
            hint = " (YAML read ': ' inside it as a key)" if isinstance(element, yaml.MappingNode) else ""
            raise NarrativeFileError(f"{where}, line {_line(element)}{label}, field {name!r}, item {number}: not a "
                                     f"text{hint}; put the text in \"double quotes\"")
        if not element.value.strip():
            raise NarrativeFileError(f"{where}, line {_line(element)}{label}, field {name!r}, item {number}: empty "
                                     "text; write the text or delete the item")
        out.append(" ".join(element.value.split()) if name in ("examples", "counter_examples") else element.value.strip())
    return tuple(out)
