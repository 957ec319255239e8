"""A cassette's YAML written as vcrpy writes it, with the nodes made faster than PyYAML's representer makes them.

vcrpy's serializer is ``yaml.dump(data, Dumper=_CassetteDumper)``: PyYAML's representer turns the data into nodes in
Python (a type lookup, an alias check and a memo per value), then the emitter (libyaml's, when there is one) writes
them. A recording's data is plain mappings with string keys, lists, strings, ints, bools and None, each object once:
``_node`` makes the very nodes the representer makes of those (keys sorted, block style, the same tags), and the
same emitter writes them (vcrpy's dumper only adds a check of what is represented); anything else (a float, bytes,
a tuple, a subclass of str, an object met twice, which the representer writes as an anchor and an alias) is left to
vcrpy's serializer, whole. tests/test_yamlwrite.py holds it to vcrpy's text on random and recorded cassettes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from vcr.serializers import yamlserializer
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

_STR, _INT, _BOOL, _NULL, _MAP, _SEQ = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null", "map", "seq"))


class _Unusual(Exception):
    """Data that ``_node`` leaves to vcrpy's serializer."""


try:  # the dumper vcrpy's is made from: libyaml's emitter when there is one
    from yaml import CDumper as _Base
except ImportError:  # PyYAML built without libyaml
    from yaml import Dumper as _Base  # type: ignore[assignment]  # the same interface, in Python


_PLAIN_MEMO_MAX, _PLAIN_LEN_MAX = 4096, 64  # short values only: keys and header values recur, bodies do not


class _Dumper(_Base):
    # what a short scalar would read back as if written plain: without path resolvers (as here) that depends on the
    # value alone, and the same keys and header values come in every interaction
    _plain: ClassVar[dict[str, Any]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The emitter asks twice per scalar; asked whether a quoted scalar reads back as a string, the resolver
        # (without path resolvers, as here) always says it does: answered here, not through its lookups.
        if kind is not ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # untyped in its stubs
        if not implicit[0]:
            return _STR
        tag = self._plain.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # likewise
            if len(value) <= _PLAIN_LEN_MAX:
                if len(self._plain) >= _PLAIN_MEMO_MAX:
                    self._plain.clear()  # bounded: a long recording session's values are not all kept
                self._plain[value] = tag
        return tag


def dumped(data: Any) -> str:
    """``data`` as vcrpy's serializer writes it."""
    try:
        node = _node(data, set())
    except (_Unusual, RecursionError):  # RecursionError: nested deeper than this recursion goes
        text: str = yamlserializer.serialize(data)
        return text
    written: str = yaml.serialize(node, Dumper=_Dumper)
    return written


def _node(value: Any, seen: set[int]) -> yaml.Node:
    kind = type(value)
    if kind is str:
        return ScalarNode(_STR, value)
    if kind is bool:
        return ScalarNode(_BOOL, "true" if value else "false")
    if kind is int:
        return ScalarNode(_INT, str(value))
    if value is None:
        return ScalarNode(_NULL, "null")
    if kind not in (dict, list) or id(value) in seen:
        raise _Unusual
    seen.add(id(value))
    if kind is list:
        return SequenceNode(_SEQ, [_node(item, seen) for item in value], flow_style=False)
    if any(type(key) is not str for key in value):
        raise _Unusual
    pairs = [(ScalarNode(_STR, key), _node(item, seen)) for key, item in sorted(value.items())]
    return MappingNode(_MAP, pairs, flow_style=False)
