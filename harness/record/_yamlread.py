"""A cassette's YAML read as vcrpy reads it, with the data made faster than PyYAML's constructor makes it.

libyaml parses (``yaml.CSafeLoader``), but PyYAML builds the data from the parsed nodes in Python, node by node,
through a memo and a generator per mapping: most of a first replay's reading of 10,000 cassettes. A cassette
written from JSON data has only plain mappings, lists and scalars, each node once: ``_built`` makes those
directly, and leaves whatever else there is to PyYAML's own constructor, which then makes the whole document —
a node met twice (an alias: the same object twice, or a loop), a merge key (``<<``), a key that is a list or a
mapping, a tag of its own (``!!set``, ``!!omap``, the Python tags of old vcrpy cassettes, which vcrpy's loader
reads). Every scalar but a string goes through PyYAML's constructor, so 200 is an int and ``2024-01-01`` a date,
as before. tests/test_yamlread.py holds it to ``yaml.load`` on random cassettes.
"""

from __future__ import annotations

from typing import Any

import yaml

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Unusual(Exception):
    """Something ``_built`` leaves to PyYAML's constructor."""


def parsed(text: str) -> Any:
    """The data of the cassette ``text``, as vcrpy's loader gives it."""
    loader = yaml.CSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _built(loader, node, set())
        except (_Unusual, RecursionError):  # RecursionError: nested deeper than this recursion goes, PyYAML's doesn't
            return loader.construct_document(node)
    except yaml.constructor.ConstructorError:
        from vcr.serializers import yamlserializer  # imported for the rare file that needs it (Python tags)

        return yamlserializer.deserialize(text)
    finally:
        loader.dispose()


def _built(loader: Any, node: yaml.Node, seen: set[int]) -> Any:
    kind = type(node)
    if kind is yaml.ScalarNode:
        return node.value if node.tag == _STR else loader.construct_object(node)
    if id(node) in seen:
        raise _Unusual
    seen.add(id(node))
    if kind is yaml.SequenceNode and node.tag == _SEQ:
        return [_built(loader, item, seen) for item in node.value]
    if kind is not yaml.MappingNode or node.tag != _MAP:
        raise _Unusual
    data: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if type(key_node) is not yaml.ScalarNode or key_node.tag == "tag:yaml.org,2002:merge":
            raise _Unusual  # a merge key, or a key that is a collection (unhashable, if a list)
        data[_built(loader, key_node, seen)] = _built(loader, value_node, seen)
    return data
