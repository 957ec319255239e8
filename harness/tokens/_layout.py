"""The text the server writes into the prompt for tool definitions and json_schema response formats.

Tools are shown as a TypeScript namespace (the layout of openai/harmony's renderer, with the differences the recorded
counts show), a json_schema as compact JSON; ``harness.tokens._count`` counts these texts and adds the fixed
framing around them. The rules and their evidence are described in ``docs/tokens.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._rules import Rules


def _default_comment(value: Any, schema: Mapping[str, Any]) -> str:
    if isinstance(value, str):
        return f"default: {value}" if schema.get("enum") else f'default: "{value}"'
    return f"default: {json.dumps(value)}"


def _variants(schema: Mapping[str, Any], rules: Rules) -> list[Any] | None:
    # anyOf is shown like oneOf: one "| type" line per variant (unless the union is written inline).
    if _inline_union(schema, rules) is not None:
        return None
    variants = schema.get("oneOf", schema.get("anyOf"))
    return variants if isinstance(variants, list) and "type" not in schema else None


def _scalar(schema: Any) -> bool:
    """Whether a union variant is a plain type: no object, reference or union, and an array only of such items."""
    if not isinstance(schema, Mapping) or {"$ref", "anyOf", "oneOf"} & set(schema):
        return False
    if schema.get("type") == "array":
        return "items" not in schema or _scalar(schema["items"])
    return schema.get("type") != "object"


def _inline_union(schema: Mapping[str, Any], rules: Rules) -> list[Any] | None:
    """The variants of a union of plain types (`string | string[]`), which is written inline like a `type` list.

    Measured: pydantic-ai's `repoName: string | string[]` (6 lines) and crewAI's `include_domains: string[] | null`
    (3 lines) were 3 and 2 tokens high written one line per variant; a union with an object variant stays one line
    per variant (crewAI's `dict | None`, 147 exact lines).
    """
    variants = schema.get("oneOf", schema.get("anyOf"))
    if "type" in schema or not isinstance(variants, list) or len(variants) < 2:
        return None
    return variants if all(_scalar(v) for v in variants) and rules.on("plain-union-inline") else None


def _comment_lines(text: str, rules: Rules) -> list[str]:
    """A description as the server shows it: "// " lines, the text and each line stripped, an empty line as "//".

    Measured: docstring descriptions (indented lines, paragraph breaks) are exact only so (pydantic-ai, ellmer,
    dd-trace-py, Mirascope); harmony's "// " + raw line is 14–38 tokens high on them.
    """
    if not rules.on("description-lines-stripped"):
        return [f"// {line}" for line in text.splitlines()]
    return [f"// {line.strip()}" if line.strip() else "//" for line in text.strip().splitlines()]


def _comment(text: str, indent: str, rules: Rules) -> str:
    return "".join(f"{indent}{line}\n" for line in _comment_lines(text, rules))


# Property keywords the renderer writes as comments ("title" even on snapshots that do not show it).
_COMMENTED = frozenset({"description", "title", "default", "examples"})


def _uncommented(schema: Any, rules: Rules) -> bool:
    """Whether an object's properties, and those of the objects nested in them, carry no commented keyword."""
    if not isinstance(schema, Mapping):
        return True
    properties = schema.get("properties") or {}
    return all(
        isinstance(p, Mapping)
        and not (_COMMENTED & set(p))
        and _variants(p, rules) is None
        and _uncommented(p.get("items"), rules)
        and _uncommented(p, rules)
        for p in properties.values()
    )


def _empty_object(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "object" and not schema.get("properties")


def _without_empty_objects(schema: Any) -> Any:
    """A schema as the 0613 renderer sees it: an object without properties is not shown, neither as a property (its
    description goes with it) nor as a variant of a union (a union left with one variant is that variant).

    Measured: crewAI's InstructorToolCalling on gpt-4-0613, whose `arguments: dict` (29 lines) is exact only without
    the property and whose `arguments: dict | None` (8 lines) only as `arguments: null`.
    """
    if isinstance(schema, list):
        return [_without_empty_objects(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {key: _without_empty_objects(value) for key, value in schema.items()}
    properties = out.get("properties")
    if isinstance(properties, Mapping):
        out["properties"] = {key: prop for key, prop in properties.items() if not _empty_object(prop)}
    for key in ("anyOf", "oneOf"):
        variants = out.get(key)
        if isinstance(variants, list) and any(_empty_object(v) for v in variants):
            kept = [v for v in variants if not _empty_object(v)]
            del out[key]
            if len(kept) == 1 and isinstance(kept[0], Mapping):
                out = {**kept[0], **out}
            elif kept:
                out[key] = kept
    return out


class _TypeScript:
    """JSON Schema → the TypeScript-like text the server shows the model (the layout of openai/harmony's renderer).

    A strict function's property titles are shown as "// Title\n//"; a non-strict function's as "// Title" when
    ``titles`` (newer snapshots, in requests without structured outputs), else not at all (see docs/tokens.md).
    """

    def __init__(self, strict: bool, root: Mapping[str, Any], titles: bool, legacy: bool, rules: Rules) -> None:
        self.strict = strict
        self.one_line = False
        self.titles = titles
        self.legacy = legacy
        self.rules = rules
        self.depth = 0  # objects being rendered around the current one
        self.definitions = {**(root.get("definitions") or {}), **(root.get("$defs") or {})}
        self.expanding: set[str] = set()

    def type(self, schema: Any, indent: str) -> str:
        if not isinstance(schema, Mapping):
            return "any"
        ref = schema.get("$ref")
        if isinstance(ref, str):
            # Local references are shown expanded, as if the definition were written in place.
            name = ref.rsplit("/", 1)[-1]
            if name not in self.definitions or name in self.expanding:
                return "any"
            definition = self.definitions[name]
            if not self.legacy and isinstance(definition, Mapping) and {"title", "description"} & set(definition):
                # Whether (and where) a referenced definition's title and description are shown is not settled:
                # crewAI's `$ref` array items miss by their titles, Mirascope's strict `Author` by its title and
                # description, while crewAI's `Person` is exact without them (docs/tokens.md).
                self.rules.unsure("a $ref to a titled or described definition")
            self.expanding.add(name)
            try:
                return self.type(definition, indent)
            finally:
                self.expanding.discard(name)
        inline = _inline_union(schema, self.rules)
        if inline is not None:
            return " | ".join(self.type(v, indent) for v in inline)
        variants = _variants(schema, self.rules)
        if variants is not None:
            return "".join(f"\n{indent} | {self.variant(v, indent, None)}" for v in variants)
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join("number" if k == "integer" else str(k) for k in kind)
        if kind == "object":
            self.depth += 1
            try:
                return self.object(schema, indent)
            finally:
                self.depth -= 1
        if kind == "string":
            values = [f'"{v}"' for v in schema.get("enum") or [] if isinstance(v, str)]
            return " | ".join(values) if values else "string"
        if kind in ("number", "integer"):
            return "number"
        if kind in ("boolean", "null"):
            return str(kind)
        if kind == "array":
            return f"{self.type(schema['items'], indent)}[]" if "items" in schema else "Array<any>"
        return "any"

    def variant(self, variant: Any, indent: str, skip_description: str | None) -> str:
        text = self.type(variant, indent + "   ")
        if not isinstance(variant, Mapping):
            return text
        if variant.get("nullable") and "null" not in text:
            text += " | null"
        comments = []
        description = variant.get("description")
        if isinstance(description, str) and description != skip_description:
            comments.append(description)
        if "default" in variant:
            comments.append(_default_comment(variant["default"], variant))
        return text + (f" // {' '.join(comments)}" if comments else "")

    def object(self, schema: Mapping[str, Any], indent: str) -> str:
        required = set(schema.get("required") or [])
        if self.one_line:
            properties = (schema.get("properties") or {}).items()
            fields = (f"{key}{'' if key in required else '?'}: {self.type(prop, '')}" for key, prop in properties)
            return "{" + ", ".join(fields) + "}"
        out = "{\n"
        close = indent
        nested = self.depth > 1 and (
            self.rules.on("legacy-nested-uncommented") if self.legacy else not self.rules.on("nested-flat")
        )
        if nested:
            # The 0613 renderer indents a nested object's properties by two spaces and drops their comments (later
            # renderers do not indent them: measured, indenting costs tokens).
            indent += "  "
        for key, prop in (schema.get("properties") or {}).items():
            prop = prop if isinstance(prop, Mapping) else {}
            if nested and self.legacy:
                prop = {k: v for k, v in prop.items() if k not in _COMMENTED}
            mark = "" if key in required else "?"
            out += self.title(prop, indent)
            variants = _variants(prop, self.rules)
            description = prop.get("description") if isinstance(prop.get("description"), str) else None
            if variants is None:
                if description is not None:
                    out += _comment(description, indent, self.rules)
                out += f"{indent}{key}{mark}: {self.type(prop, indent)}"
                if prop.get("nullable"):
                    out += " | null"
                out += ","
                if "default" in prop:
                    out += f" // {_default_comment(prop['default'], prop)}"
                out += "\n"
                continue
            # A union property: its description above it (unless the first variant repeats it), one line per variant.
            first = variants[0] if variants and isinstance(variants[0], Mapping) else {}
            above = description is not None and first.get("description") != description
            if description is not None and above:
                out += _comment(description, indent, self.rules)
            if "default" in prop:
                out += f"{indent}// {_default_comment(prop['default'], prop)}\n"
            out += f"{indent}{key}{mark}:\n"
            for i, variant in enumerate(variants):
                skip = description if (i > 0 or not above) else (variant or {}).get("description")
                out += f"{indent} | {self.variant(variant, indent, skip)}\n"
            out += f"{indent},\n"
        return out + f"{close}}}"

    def title(self, prop: Mapping[str, Any], indent: str) -> str:
        title = prop.get("title")
        if not isinstance(title, str):
            return ""
        if self.strict and self.rules.on("strict-titles"):
            # A strict title is set off from the description by an empty "//" line; alone it is one line.
            separator = f"{indent}//\n" if isinstance(prop.get("description"), str) else ""
            return f"{indent}// {title}\n{separator}"
        if not self.strict and self.titles and self.rules.on("nonstrict-titles"):
            return f"{indent}// {title}\n"
        return ""


def render_tools(
    functions: Sequence[Mapping[str, Any]], *, titles: bool = False, legacy: bool = False, rules: Rules | None = None
) -> str:
    """The function definitions as the server writes them into the prompt (a TypeScript namespace).

    ``titles``: show non-strict functions' property titles too (see ``_TypeScript``). ``legacy``: the 0613 snapshots'
    renderer (the first function-calling release): ``strict`` is ignored, the parameters' own title and description
    are not shown, and a nested object's properties are indented by two spaces without their comments. ``rules``: the
    layout rules that apply (all by default; see ``harness.tokens._rules``).
    """
    rules = rules or Rules()
    if not titles and not rules.on("titles-hidden-before-structured-outputs"):
        titles = True
    lines = ["# Tools\n\n## functions\n\nnamespace functions {\n"]
    for fn in functions:
        if legacy:
            fn = {k: v for k, v in fn.items() if k != "strict"}
            shown = _without_empty_objects(fn.get("parameters") or {})
            if shown != (fn.get("parameters") or {}) and rules.on("legacy-empty-objects-hidden"):
                fn["parameters"] = shown
        lines.extend(_comment_lines(str(fn.get("description") or ""), rules))
        params = fn.get("parameters") or {}
        if not legacy:
            lines.extend(_parameters_comments(params, bool(fn.get("strict")) or titles, rules))
        if params.get("properties"):
            typescript = _TypeScript(bool(fn.get("strict")), params, titles, legacy, rules)
            signature = typescript.type(params, "")
            if not fn.get("strict") and _uncommented(params, rules) and rules.on("uncommented-one-line"):
                # Non-strict parameters without any comment are written on one line: "(_: {a: number, b?: string})".
                typescript.one_line = True
                signature = typescript.type(params, "")
            lines.append(f"type {fn['name']} = (_: {signature}) => any;\n")
        else:
            lines.append(f"type {fn['name']} = () => any;\n")
    lines.append("} // namespace functions")
    return "\n".join(lines)


def _parameters_comments(params: Mapping[str, Any], titled: bool, rules: Rules) -> list[str]:
    """The parameters' own title and description (pydantic's model name and docstring), shown as comments."""
    lines: list[str] = []
    for key in ("title", "description"):
        if isinstance(params.get(key), str) and rules.on("parameters-comments"):
            lines.extend(_comment_lines(params[key], rules))
            if key == "title" and titled and rules.on("parameters-title-separator"):
                # "// Title\n//", like a strict property's title: a strict function's, and a non-strict one's
                # where the snapshot shows titles (measured: Arize's `*_input` titles, +1 per function before).
                lines.append("//")
    return lines


# Keywords the server leaves out of the schema it shows the model: strict mode implies the first two; a default and
# numeric bounds are not shown either (rule schema-hidden-bounds).
_IMPLIED_KEYWORDS = frozenset({"additionalProperties", "required"})
_BOUNDS = frozenset({"default", "minimum", "maximum"})
_SUBSCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SUBSCHEMAS = frozenset({"items", "anyOf", "oneOf", "allOf", "not", "prefixItems", "additionalItems"})


def _shown_schema(schema: Any, rules: Rules) -> Any:
    if isinstance(schema, list):
        return [_shown_schema(s, rules) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _IMPLIED_KEYWORDS or (key in _BOUNDS and rules.on("schema-hidden-bounds")):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _shown_schema(sub, rules) for name, sub in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = _shown_schema(value, rules)
        else:
            out[key] = value
    return out


def render_response_format(spec: Mapping[str, Any], *, rules: Rules | None = None) -> str:
    """A json_schema response format as the server writes it into the prompt (compact JSON under a heading)."""
    rules = rules or Rules()
    text = f"# Response Formats\n\n## {spec.get('name', '')}\n\n"
    if spec.get("description"):
        text += f"// {spec['description']}\n"
    # Serialized like Python's json.dumps: non-ASCII characters are written as \u escapes (rule schema-ascii-escapes).
    shown = _shown_schema(spec.get("schema") or {}, rules)
    raw = json.dumps(shown, separators=(",", ":"), ensure_ascii=False)
    if raw.isascii() or not rules.on("schema-ascii-escapes"):
        return text + raw
    return text + json.dumps(shown, separators=(",", ":"))


def render_parallel_calls(calls: Sequence[Mapping[str, Any]]) -> str:
    """The arguments of the multi_tool_use.parallel call that stands for an assistant message's parallel calls."""
    uses = []
    for call in calls:
        fn = call.get("function") or {}
        text = str(fn.get("arguments") or "{}")
        try:
            parameters = json.loads(text)
        except ValueError:
            parameters = text
        uses.append({"recipient_name": f"functions.{fn.get('name')}", "parameters": parameters})
    return json.dumps({"tool_uses": uses}, separators=(",", ":"), ensure_ascii=False)


def render_parallel_results(results: Sequence[str], *, escaped: bool = False) -> str:
    """The one tool message answering a parallel call: the results' texts as a JSON list (``escaped``: non-ASCII
    characters as \\u escapes, as the server wrote them until March 2026)."""
    return json.dumps(list(results), ensure_ascii=escaped)
