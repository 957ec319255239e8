"""Hostile input, table-driven: each malformed file is refused with its ``file:line`` and JSON pointer, no traceback,
no hang and no request.

Every variant is a small eval (``evals/<id>.yaml``) with its own case file (``cases/<id>.yaml``) whose endpoint is the
``fake_openai`` server. Each is checked twice: ``promptvcr validate`` on it alone, in-process (exit 2, the place cited,
no traceback), and all of them together in one ``promptvcr run --record-mode once`` in a subprocess bound by a
timeout (exit 2, every place cited, nothing sent: had one been let through, its request would reach the server and
be counted). Expected lines are those of the needle in the text written, never typed in.

The classes that answer rather than refuse have their own runs below: a check that backtracks catastrophically
fails its sample with "check timed out", a refusal says so; CLI numbers out of range are usage errors.
"""

from __future__ import annotations

import csv
import faulthandler
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.checks import _builtins as checks
from harness.cli import _main as cli
from harness.load import _evals as evals
from tests.fakeserver import FakeOpenAI, Reply, completion
from tests.test_inputs import GOOD_CASE

RUN_TIMEOUT_S = 120  # the whole combined run; a hang in any variant ends the test instead of the CI job
URL = "{url}"  # replaced by the fake server's base_url when a project is written


@dataclass(frozen=True)
class Variant:
    kind: str
    id: str
    case: str | bytes  # the case file's text
    eval: str | bytes  # the eval file's text
    file: str  # "case" or "eval": where the defect is
    needle: str  # the defect's line holds this
    pointer: str | None  # None: no pointer (e.g. a syntax error); a prefix when it ends with "…"
    message: str

    def text(self, which: str) -> bytes:
        raw = self.case if which == "case" else self.eval
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        return data.replace(b"{id}", self.id.encode())

    @property
    def where(self) -> str:
        folder = "cases" if self.file == "case" else "evals"
        lines = self.text(self.file).split(b"\n")
        hits = [n for n, line in enumerate(lines, start=1) if self.needle.encode() in line]
        assert len(hits) == 1, f"{self.id}: the needle {self.needle!r} must be on exactly one line"
        return f"{folder}/{self.id}.yaml:{hits[0]}"


CASE = GOOD_CASE  # the valid case file of tests.test_inputs; each variant changes one thing in it

EVAL = """\
name: {id}
cases:
  - cases/{id}.yaml
endpoint: {base_url: "{url}"}
variants:
  v: {max_tokens: 50}
gates:
  - {metric: pass_rate, op: '>=', value: 0.5}
"""

# fmt: off
VARIANTS: list[Variant] = []


def edited(kind: str, file: str, rows: list[tuple[str, str, str, str, str | None, str]]) -> None:
    """Variants whose case (``file`` "case") or eval file has ``old`` replaced by ``new``; each row is
    (id, old, new, needle, pointer, message)."""
    base = CASE if file == "case" else EVAL
    for id, old, new, needle, pointer, message in rows:
        assert old in base, id
        text = base.replace(old, new)
        case, ev = (text, EVAL) if file == "case" else (CASE, text)
        VARIANTS.append(Variant(kind, id, case, ev, file, needle, pointer, message))


def raw(kind: str, rows: list[tuple[str, str | bytes, str | bytes, str, str, str | None, str]]) -> None:
    """Variants written out whole: (id, case text, eval text, file, needle, pointer, message)."""
    VARIANTS.extend(Variant(kind, *row) for row in rows)


T, V, C1 = "temperature: 0.2", "    vars: {name: Ada}", "      - contains: ok"
SAY = "content: Say hello to {{ name }} in JSON."
URLS, GATE, VARS = '"{url}"}', "value: 0.5}", "variants:"
CONTENT, FIN, WHOLE, UNK = "/cases/0/messages/0/content", "not a finite number", "whole number", "unknown key"
NOLOAD, NOJSON, SYNTAX = "include, import and extends are not available", "value has no JSON form", "YAML syntax error"


def templates(kind: str, rows: list[tuple[str, str, str]]) -> None:
    """Variants whose one message template is ``template``: (id, template, message)."""
    edited(kind, "case", [(id, SAY, f"content: {t!r}", "content:", CONTENT, m) for id, t, m in rows])


# 1. Templates that fail while rendering: the template's own code, so its file's problem.
templates("template", [
    ("zero-division", "{{ 1 / 0 }}", "ZeroDivisionError"),
    ("type-error", "{{ 'a' + 1 }}", "TypeError"),
    ("huge-range", "{{ range(10**6) | list }}", "Range too big"),
    ("include", "{% include 'other.j2' %}", NOLOAD),
    ("import", "{% import 'macros.j2' as m %}", NOLOAD),
    ("extends", "{% extends 'base.j2' %}", NOLOAD),
    ("pop-empty", "{{ [].pop() }}", "IndexError"),
    ("endless-loops", "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "took more"),
    ("string-bomb", "{{ 'x' * 10**9 }}", "too large"),
    ("power-bomb", "{{ 10 ** (10 ** 9) }}", "too large"),
    ("filter-bomb", "{{ 'x' | center(10**9) }}", "is refused"),
    ("format-bomb", "{{ '%0999999999d' % 1 }}", "too large"),
    ("method-format-bomb", "{{ '{:>9999999999}'.format(1) }}", "is refused"),
    ("output-bomb", "{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", "renders more than"),
])

# 2. Numbers that pass a minimum/maximum but aren't what the field means.
edited("numbers", "case", [
    ("nan-temperature", T, "temperature: .nan", "temperature", "/cases/0/temperature", FIN),
    ("inf-top-p", T, "top_p: -.inf", "top_p", "/cases/0/top_p", FIN),
    ("overflow-temperature", T, "temperature: 1.0e+999", "temperature", "/cases/0/temperature", FIN),
    ("inf-min-pass-rate", T, "min_pass_rate: .inf", "min_pass_rate", "/cases/0/min_pass_rate", FIN),
    ("float-samples", T, "samples: 2.0", "samples", "/cases/0/samples", "expected a whole number, got 2.0"),
    ("float-max-tokens", T, "max_tokens: 50.0", "max_tokens", "/cases/0/max_tokens", "write 50"),
])
edited("numbers", "eval", [
    ("float-eval-samples", VARS, "samples: 3.0\nvariants:", "samples: 3.0", "/samples", WHOLE),
    ("float-concurrency", VARS, "limits: {concurrency: 4.0}\nvariants:", "y: 4", "/limits/concurrency", WHOLE),
    ("float-min-n", GATE, "value: 0.5, min_n: 5.0}", "min_n", "/gates/0/min_n", WHOLE),
    ("nan-gate-value", GATE, "value: .nan}", "value: .nan", "/gates/0/value", FIN),
    ("inf-timeout", URLS, '"{url}", timeout_s: .inf}', "timeout_s", "/endpoint/timeout_s", FIN),
    ("fractional-retries", URLS, '"{url}", max_retries: 1.5}', "max_retries", "/endpoint/max_retries", "integer"),
])


def laughs(anchor: str, indent: str = "", levels: int = 9) -> str:
    """A "billion laughs" block: level i is ten aliases of level i - 1 (10**levels values)."""
    lines = [f"{anchor}0: &{anchor}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{anchor}{i}: &{anchor}{i} [{', '.join([f'*{anchor}{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(indent + line for line in lines)


MAPS = "\n".join(
    ["    m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol, i: lol, j: lol}"]
    + [f"    m{i}: &m{i} {{{', '.join(f'{k}: *m{i - 1}' for k in 'abcdefghij')}}}" for i in range(1, 8)]
)
DEEP = "    vars: {name: Ada, deep: " + "[" * 150 + "]" * 150 + "}"
EXPAND = "YAML aliases expand"
# 3. YAML alias expansion. Walking level i again costs 11**i-ish values (each alias and all it holds):
# ALIAS_BUDGET (100 000) runs out in level 4.
edited("aliases", "case", [
    ("laughs-in-vars", V, f"    vars:\n{laughs('l', '      ')}", "l4:", "/cases/0/vars/l4/…", EXPAND),
    ("alias-loop-map", V, "    vars: &v {name: Ada, me: *v}", "&v", "/cases/0/vars/me", "a loop"),
    ("alias-loop-list", V, "    vars: {name: Ada, me: &s [a, *s]}", "&s", "/cases/0/vars/me/1", "a loop"),
    ("deep-nesting", V, DEEP, "deep:", "/cases/0/vars/deep/0/…", "nested more than 100"),
    ("laughs-of-mappings", "cases:", f"defaults:\n  vars:\n{MAPS}\ncases:", "m4:", "/defaults/vars/m4/…", EXPAND),
])
edited("aliases", "eval", [("laughs-in-eval", VARS, f"{laughs('x')}\nvariants:", "x4:", "/x4/…", EXPAND)])

# 4. Encoding: bytes that aren't UTF-8 text, control characters, values JSON has no form for.
CB, EB = CASE.encode(), EVAL.encode()
raw("encoding", [
    ("latin-1-case", CB.replace(b"Say hello", b"Say h\xe9llo"), EVAL, "case", "content:", None, "not UTF-8 text"),
    ("latin-1-eval", CASE, EB.replace(b"v: {max", b"v\xe9: {max"), "eval", "max_tokens", None, "not UTF-8 text"),
    ("nul-byte", CB.replace(b"role: user", b"role: us\x00er"), EVAL, "case", "role:", None, "U+0000 is not allowed"),
    ("control-char", CASE, EB.replace(b"  - cases/", b"  - \x07cases/"), "eval", "\x07", None, "U+0007 is not"),
    ("utf-16-file", CASE.encode("utf-16"), EVAL, "case", "c\x00a\x00s\x00e\x00s\x00:", None, "not UTF-8 text"),
])
edited("encoding", "case", [
    ("timestamp-tag", C1, "      - equals: !!timestamp 2024-01-01", "!!timestamp", None, f"!!timestamp {NOJSON}"),
    ("binary-tag", V, "    vars: {name: !!binary aGVsbG8=}", "!!binary", None, f"!!binary {NOJSON}"),
    ("set-tag", V, "    vars: {name: !!set {a, b}}", "!!set", None, f"!!set {NOJSON}"),
])

# 6. JSON pointers that can't be valid (RFC 6901: a ~ is followed by 0 or 1; a pointer starts with /).
edited("pointers", "case", [
    (id, C1, f"      - {check}", check.split(":")[0], f"/cases/0/expect/1/{check.split(':')[0]}/path", "RFC 6901")
    for id, check in (
        ("pointer-tilde-2", "contains: {value: ok, path: /a~2}"),
        ("pointer-trailing-tilde", "regex: {pattern: ok, path: /a~}"),
        ("pointer-no-slash", "equals: {value: 1, path: a/b}"),
        ("pointer-tilde-letter", "max_chars: {value: 3, path: /~x}"),
        ("pointer-not-contains", "not_contains: {value: x, path: /ok/~9}"),
        ("pointer-judge", "judge: {rubric: polite, threshold: 0.5, model: m, path: /x~}"),
    )
])

# The classes that held before: they must keep holding.
edited("yaml-syntax", "case", [
    ("mapping-in-value", SAY, "content: Say: hello", "Say: hello", None, SYNTAX),
    ("unclosed-flow", V, "    vars: {name: Ada\n    samples: 2", "samples: 2", None, SYNTAX),
    ("tab-indent", "    " + T, "\t" + T, "\ttemperature", None, SYNTAX),
    ("bad-dedent", "    model: fake-model", "    model: fake-model\n   stray: 1", "stray", None, SYNTAX),
    ("alias-undefined", V, "    vars: {name: *nowhere}", "*nowhere", None, SYNTAX),
])
edited("duplicate-keys", "case", [
    ("dup-model", "    " + T, "    model: other", "model: other", "/cases/0/model", "duplicate key 'model'"),
    ("dup-var", V, "    vars: {name: Ada, name: Bob}", "Bob", "/cases/0/vars/name", "duplicate key 'name'"),
    ("dup-id", "    model: fake-model", "    model: fake-model\n    id: again", "id: again", "/cases/0/id", "key 'id'"),
])
edited("duplicate-keys", "eval", [
    ("dup-variant", "  v: {max_tokens: 50}", "  v: {max_tokens: 50}\n  v: {}", "v: {}", "/variants/v", "key 'v'"),
    ("dup-name", VARS, "name: again\nvariants:", "name: again", "/name", "duplicate key 'name'"),
])
edited("unknown-keys", "case", [
    ("typo-temperature", T, "temprature: 0.2", "temprature", "/cases/0/temprature", UNK),
    ("typo-long-check", C1, "      - contains: {value: ok, paht: /a}", "paht", "/cases/0/expect/1/contains/paht", UNK),
])
edited("unknown-keys", "eval", [
    ("typo-endpoint", URLS, '"{url}", timeout: 3}', "timeout:", "/endpoint/timeout", UNK),
    ("typo-gate", GATE, "value: 0.5, varient: v}", "varient", "/gates/0/varient", UNK),
    ("typo-top-level", VARS, "budget: 3\nvariants:", "budget:", "/budget", UNK),
])
edited("wrong-types", "case", [
    ("temperature-word", T, "temperature: hot", "temperature", "/cases/0/temperature", "expected number"),
    ("samples-string", T, "samples: '3'", "samples", "/cases/0/samples", "expected integer"),
    ("messages-string", "    messages:\n", "    messages: hi\n    m:\n", "messages: hi", "/cases/0/messages", ""),
    ("bool-temperature", T, "temperature: yes", "temperature", "/cases/0/temperature", "expected number"),
])
edited("wrong-types", "eval", [("variants-list", "  v: {max_tokens: 50}", "  - v", VARS, "/variants", "object")])
edited("bad-ids", "case", [
    ("id-with-space", "id: greet", "id: has space", "has space", "/cases/0/id", ""),
    ("id-empty", "id: greet", "id: ''", "id: ''", "/cases/0/id", ""),
    ("id-number", "id: greet", "id: 123", "id: 123", "/cases/0/id", "expected string"),
])
edited("bad-ids", "eval", [
    ("eval-name-slash", "name: {id}", "name: bad/{id}", "name: bad", "/name", ""),
    ("variant-name-space", "  v: {max_tokens: 50}", "  a b: {max_tokens: 50}", "a b", "/variants/a b", ""),
])
edited("python-tags", "case", [
    (id, V, f"    vars:\n      name: {tag}", "!!python", None, "could not determine a constructor")
    for id, tag in (
        ("python-apply", "!!python/object/apply:os.system ['echo pwned']"),
        ("python-name", "!!python/name:os.system"),
        ("python-object", "!!python/object:object {}"),
        ("python-tuple", "!!python/tuple [1, 2]"),
        ("python-module", "!!python/module:os"),
    )
])
templates("jinja-sandbox", [
    ("dunder-class", "{{ name.__class__ }}", "template"),
    ("mro-walk", "{{ ''.__class__.__mro__ }}", "template"),
    ("globals", "{{ cycler.__init__.__globals__ }}", "template"),
    ("template-context", "{{ self._TemplateReference__context }}", "template"),
    ("lipsum-globals", "{{ lipsum.__globals__['os'] }}", "template"),
])
BOM = "\ufeff"


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


# Found on the way: numbers that overflow the platform, lone surrogates, a schema that refers to itself without end.
HALF, LIMITS = "half of a UTF-16 pair", "limits: {0}\nvariants:"
CYCLE = "{$defs: {a: {$ref: '#/$defs/b'}, b: {$ref: '#/$defs/a'}}, $ref: '#/$defs/a'}"
edited("beyond", "case", [
    ("surrogate-value", SAY, 'content: "hi \\ud800"', "content:", CONTENT, HALF),
    ("surrogate-key", V, '    vars: {"\\udfff": 1, name: Ada}', "vars:", "/cases/0/vars/\\udfff", HALF),
    ("surrogate-rendered", SAY, """content: '{{ "%c" | format(55296) }}'""", "content:", CONTENT, HALF),
    ("ref-loop", C1, '      - json_schema: {$ref: "#"}', "$ref", "/cases/0/expect/1/json_schema", "a $ref loop"),
    ("ref-cycle", C1, f"      - json_schema: {CYCLE}", "$defs", "/cases/0/expect/1/json_schema", "a $ref loop"),
])
edited("beyond", "eval", [
    ("timeout-overflow", URLS, '"{url}", timeout_s: 1.0e+300}', "timeout_s", "/endpoint/timeout_s", "maximum of 86400"),
    ("retry-overflow", VARS, LIMITS.format("{max_retry_time_s: 1.0e+300}"), "max_r", "/limits/max_retry_time_s",
     "maximum"),
    ("rpm-underflow", VARS, LIMITS.format("{rpm: 1.0e-300}"), "{rpm", "/limits/rpm", "minimum of 0.001"),
    ("tpm-fraction", VARS, LIMITS.format("{models: {m: {tpm: 0.5}}}"), "{tpm", "/limits/models/m/tpm", "minimum of 1"),
])
raw("bom-crlf", [
    ("bom-typo", BOM + CASE.replace(T, "temprature: 0.2"), EVAL, "case", "temprature", "/cases/0/temprature", UNK),
    ("crlf-dup", crlf(CASE.replace("    " + T, "    model: other")), EVAL, "case", "other", "/cases/0/model", "dup"),
    ("bom-crlf-nan", BOM + crlf(CASE.replace(T, "temperature: .nan")), EVAL, "case", ".nan", "/cases/0/temp…", FIN),
    ("crlf-template", crlf(CASE.replace(SAY, "content: '{{ 1 / 0 }}'")), EVAL, "case", "content:", CONTENT, "Zero"),
    ("crlf-eval", CASE, crlf(EVAL.replace(VARS, "varients: {}\nvariants:")), "eval", "varients", "/varients", UNK),
])
# fmt: on


def write(root: Path, variants: list[Variant], url: str) -> None:
    (root / "conftest.py").write_text('pytest_plugins = ["harness.plugin"]\n', encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for folder in ("cases", "evals"):
        (root / folder).mkdir(exist_ok=True)
    for v in variants:
        (root / "cases" / f"{v.id}.yaml").write_bytes(v.text("case"))
        (root / "evals" / f"{v.id}.yaml").write_bytes(v.text("eval").replace(URL.encode(), url.encode()))


def assert_cited(out: str, v: Variant) -> None:
    """One line cites the variant's file:line, with its pointer (or none) and its message."""
    lines = [line for line in out.splitlines() if f"{v.where}:" in line]
    assert lines, f"{v.id}: nothing cites {v.where} in:\n{out}"
    line = lines[0]
    if v.pointer is None:
        assert " at /" not in line, line
    elif v.pointer.endswith("…"):
        assert f" at {v.pointer.removesuffix('…')}" in line, line
    else:
        assert f" at {v.pointer} " in line, line
    assert v.message in line, line


@pytest.fixture
def watchdog() -> Iterator[None]:
    """An in-process check that hangs ends the test process (with every thread's stack) instead of the CI job."""
    faulthandler.dump_traceback_later(60, exit=True, file=sys.__stderr__)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("v", VARIANTS, ids=[f"{v.kind}:{v.id}" for v in VARIANTS])
def test_validate_refuses_it_with_its_place(
    v: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], watchdog: None
) -> None:
    write(tmp_path, [v], "http://127.0.0.1:9/v1")
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    code = cli.main(["validate", f"evals/{v.id}.yaml"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text
    assert_cited(text, v)
    assert time.monotonic() - started < 10, "refused, but slowly"


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_run_of_every_variant_stops_before_any_request(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    write(tmp_path, VARIANTS, fake_openai.base_url)
    argv = [sys.executable, "-m", "harness.cli", "run", "--record-mode", "once", "--", "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out
    for v in VARIANTS:
        assert_cited(out, v)
    assert f"{len(VARIANTS)} errors during collection" in out
    assert fake_openai.received == []
    assert not (tmp_path / "cassettes").exists()


def test_every_class_has_five_variants() -> None:
    kinds = {v.kind for v in VARIANTS}
    assert all(sum(v.kind == k for v in VARIANTS) >= 5 for k in kinds), kinds
    assert len({v.id for v in VARIANTS}) == len(VARIANTS)


# ------------------------------------------------------------------------------------------- answered, not refused


def answering_project(root: Path, url: str, cases: list[dict[str, Any]], **extra: Any) -> None:
    """One eval ``answers`` (with the ``extra`` keys) whose cases, each naming itself in its user message, are given."""
    import yaml

    (root / "conftest.py").write_text('pytest_plugins = ["harness.plugin"]\n', encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "cases").mkdir()
    (root / "evals").mkdir()
    for case in cases:
        case.setdefault("messages", [{"role": "user", "content": f"case {case['id']}"}])
    doc = {"defaults": {"model": "fake-model", "max_tokens": 50}, "cases": cases}
    (root / "cases" / "answers.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    ev = {"name": "answers", "cases": ["cases/answers.yaml"], "endpoint": {"base_url": url}, "variants": {"v": {}}}
    ev |= extra
    (root / "evals" / "answers.yaml").write_text(yaml.safe_dump(ev, sort_keys=False), encoding="utf-8")


def run_cli(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    argv = [sys.executable, "-m", "harness.cli", *args, "--", "-p", "no:cacheprovider"]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return done, time.monotonic() - started


def results(root: Path) -> dict[str, dict[str, str]]:
    with (root / "reports" / "latest" / "results.csv").open(encoding="utf-8", newline="") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


def case_id(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).removeprefix("case ")


LONG = "a" * 5000 + "!"
REDOS: dict[str, tuple[dict[str, Any], str]] = {  # case id → (its check, the answer that makes it backtrack)
    "nested-plus": ({"regex": "(a+)+$"}, LONG),
    "alternation": ({"regex": "(a|aa)+$"}, LONG),
    "repeated-group": ({"regex": {"pattern": "(.*a){25}$"}}, LONG),
    "at-a-path": ({"regex": {"pattern": "(x+x+)+y", "path": "/t"}}, '{"t": "' + "x" * 5000 + '"}'),
    "schema-pattern": (
        {"json_schema": {"type": "object", "properties": {"t": {"type": "string", "pattern": "^(a|aa)+$"}}}},
        '{"t": "' + LONG + '"}',
    ),
    "schema-pattern-properties": (
        {"json_schema": {"type": "object", "patternProperties": {"^(a|aa)+$": {"type": "integer"}}}},
        '{"' + LONG + '": 1}',
    ),
}


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_catastrophic_backtracking_fails_its_sample_not_the_run(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cases = [{"id": name, "expect": [check, {"not_contains": "never"}]} for name, (check, _) in REDOS.items()]
    answering_project(tmp_path, fake_openai.base_url, cases)
    fake_openai.respond = lambda body: Reply(body=completion(REDOS[case_id(body)][1]))
    done, elapsed = run_cli(tmp_path, "run", "--record-mode", "once")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]  # cases failed: the run itself finished, with its report
    assert "Traceback" not in out
    rows = results(tmp_path)
    assert set(rows) == set(REDOS)
    for name, row in rows.items():
        assert row["outcome"] == "failed", name
        assert "check timed out" in row["reasons"], (name, row["reasons"])
        assert "not_contains" not in row["failed_checks"], name  # the case's other check still ran, and passed
    # every sample's checks stop at their limit: the checks are sequential, so the run is about their sum
    assert elapsed < len(REDOS) * matching_limit() + 30, elapsed
    assert len(fake_openai.chat_requests) == len(REDOS)


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_backtracking_redaction_rule_masks_the_whole_text(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """An eval's own redaction pattern runs on every answer before it is written: one that backtracks masks all of
    the text it could not finish on (never keeps it) and the run goes on."""
    rules = [{"name": "slow", "pattern": "(a|aa)+$"}]
    answering_project(tmp_path, fake_openai.base_url, [{"id": "one", "expect": [{"max_chars": 10}]}], redact=rules)
    fake_openai.respond = lambda body: Reply(body=completion(LONG))
    done, elapsed = run_cli(tmp_path, "run", "--record-mode", "once")
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]  # the masked text is longer than 10
    assert "Traceback" not in done.stdout + done.stderr
    row = results(tmp_path)["one"]
    assert row["output"].startswith("[REDACTED:slow: the rule took over"), row["output"]
    written = [p.read_text(encoding="utf-8") for p in (tmp_path / "cassettes").rglob("*.yaml")]
    assert written and not any("a" * 100 in text for text in written)
    assert elapsed < 60, elapsed


def matching_limit() -> float:
    from harness.checks import _matching as matching

    return matching.CHECK_TIME_LIMIT_S


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_backtracking_check_ends_within_the_limit() -> None:
    check = checks.compile_check("regex", "(a+)+$")
    started = time.monotonic()
    (result,) = checks.run_checks([check], {}, completion(LONG))
    assert time.monotonic() - started < matching_limit() + 0.5
    assert (result.passed, result.reason.split(" (")[0]) == (False, "check timed out")
    fast = checks.compile_check("regex", "^a+!$")  # and a sound pattern on the same answer still matches
    assert checks.run_checks([fast], {}, completion(LONG))[0].passed


REFUSAL = "I can't help with that."
REFUSALS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {  # case id → (its checks, the message sent)
    "json-null-content": ([{"json_valid": True}], {"content": None, "refusal": REFUSAL}),
    "json-empty-content": ([{"json_valid": True}], {"content": "", "refusal": REFUSAL}),
    "schema": ([{"json_schema": {"type": "object"}}], {"content": None, "refusal": REFUSAL}),
    "contains": ([{"contains": "ok"}], {"content": None, "refusal": REFUSAL}),
    "passing-check": ([{"not_contains": "secret"}], {"content": None, "refusal": REFUSAL}),
    "json-object-format": ([{"max_chars": 10}], {"content": None, "refusal": REFUSAL}),
}


def refused(body: dict[str, Any]) -> Reply:
    reply = completion("unused")
    reply["choices"][0]["message"] = {"role": "assistant", **REFUSALS[case_id(body)][1]}
    return Reply(body=reply)


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_refusal_says_so_in_reasons_and_its_column(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    cases = [{"id": name, "expect": expect} for name, (expect, _) in REFUSALS.items()]
    cases[-1]["response_format"] = "json_object"
    answering_project(tmp_path, fake_openai.base_url, cases)
    fake_openai.respond = refused
    for mode in ("once", "none"):  # recorded, then replayed: the cassette keeps the refusal
        done, _ = run_cli(tmp_path, "run", "--record-mode", mode)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out[-3000:]
        assert "Traceback" not in out
        rows = results(tmp_path)
        assert set(rows) == set(REFUSALS)
        for name, row in rows.items():
            assert row["refusal"] == REFUSAL, name
            assert f"refused: {REFUSAL}" in row["reasons"], (name, row["reasons"])
            assert row["json_valid"] in ("False", ""), name  # never valid JSON
        for name in ("json-null-content", "json-empty-content", "schema", "json-object-format"):
            assert rows[name]["json_valid"] == "False", name
        assert rows["json-null-content"]["reasons"] == f"json_valid: refused: {REFUSAL}"
        assert rows["passing-check"]["outcome"] == "passed"  # a refusal fails only the checks it fails (for now)
    assert len(fake_openai.chat_requests) == len(REFUSALS)


# ---------------------------------------------------------------------------------------------------- CLI numbers


def cli_variants(url: str, body: Path) -> list[tuple[list[str], str]]:
    return [
        (["estimate", "--samples", "-1"], "--samples -1"),
        (["estimate", "--samples", "0"], "--samples 0"),
        (["run", "--samples", "0", "--record-mode", "once"], "--samples 0"),
        (["run", "--samples", "-5", "--record-mode", "once"], "--samples -5"),
        (["compare", "--max-cost-increase", "nan"], "--max-cost-increase nan"),
        (["compare", "--max-cost-increase", "-1"], "--max-cost-increase -1"),
        (["load", url, "--rps", "nan", "--body", str(body)], "--rps nan"),
        (["load", url, "--rps", "-2", "--body", str(body)], "--rps -2"),
        (["load", url, "--rps", "5", "--concurrency", "0", "--body", str(body)], "--concurrency 0"),
        (["load", url, "--rps", "5", "--timeout", "inf", "--body", str(body)], "--timeout inf"),
        (["chaos-server", "--port", "70000"], "--port 70000"),
        (["chaos-server", "--rate-500", "1.5"], "--rate-500 1.5"),
        (["serve-local", "--slots", "0"], "--slots 0"),
    ]


@pytest.mark.parametrize("index", range(13))
def test_a_cli_number_out_of_range_is_a_usage_error(
    index: int, tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: Any, watchdog: None
) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"model": "fake-model", "messages": []}', encoding="utf-8")
    argv, said = cli_variants(fake_openai.base_url, body)[index]
    answering_project(tmp_path, fake_openai.base_url, [{"id": "one", "expect": [{"json_valid": True}]}])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2, err
    assert said in err and "Traceback" not in err, err
    assert fake_openai.received == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_load_body_with_a_non_json_number_is_refused(
    number: str, tmp_path: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_text(f'{{"model": "fake-model", "messages": [], "temperature": {number}}}', encoding="utf-8")
    assert cli.main(["load", fake_openai.base_url, "--rps", "5", "--requests", "1", "--body", str(body)]) == 2
    err = capsys.readouterr().err
    assert f"{number} is not a JSON number" in err and "Traceback" not in err, err
    assert fake_openai.received == []


def test_run_with_zero_samples_sends_nothing(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    answering_project(tmp_path, fake_openai.base_url, [{"id": "one", "expect": [{"json_valid": True}]}])
    done, _ = run_cli(tmp_path, "run", "--samples", "0", "--record-mode", "once")
    assert done.returncode == 2, done.stderr
    assert "--samples 0: must be at least 1" in done.stderr and "Traceback" not in done.stderr
    assert fake_openai.received == []


# ---------------------------------------------------------------------------------------------------- the rest


def test_unquoted_dates_are_strings_as_in_json(tmp_path: Path) -> None:
    """YAML 1.1 reads 2024-01-01 as a date, which JSON has not: promptvcr reads it as the string it looks like."""
    case = CASE.replace(
        "      - contains: ok",
        "      - json_schema: {type: object, properties: {d: {const: 2024-01-01}}}\n"
        "      - equals: {value: 2024-01-01T10:00:00Z, path: /t}",
    )
    v = Variant("dates", "dates", case, EVAL, "case", "equals", None, "")
    write(tmp_path, [v], "http://127.0.0.1:9/v1")
    (run,) = evals.load(tmp_path / "evals" / "dates.yaml", tmp_path).runs
    answer = completion('{"d": "2024-01-01", "t": "2024-01-01T10:00:00Z"}')
    outcomes = checks.run_checks(run.case.checks, run.body, answer)
    assert [(o.name, o.passed) for o in outcomes] == [("json_valid", True), ("json_schema", True), ("equals", True)]


def test_lookup_by_name_passes_over_broken_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], watchdog: None
) -> None:
    """`promptvcr validate NAME` reads every file in evals/ for its `name`: a broken one is passed over, not fatal."""
    good = Variant("lookup", "good-file", CASE, EVAL.replace("name: {id}", "name: wanted"), "eval", "name", None, "")
    broken = [v for v in VARIANTS if v.id in ("latin-1-eval", "laughs-in-eval", "control-char", "crlf-eval")]
    write(tmp_path, [good, *broken], "http://127.0.0.1:9/v1")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", "wanted"]) == 0
    assert cli.main(["validate", "unknown"]) == 2
    err = capsys.readouterr().err
    assert "no eval 'unknown'" in err and "Traceback" not in err


def test_our_own_bug_is_an_internal_error_with_a_report_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(name: str, arg: Any, root: Path | None = None) -> checks.Check:
        raise KeyError("a bug")

    write(tmp_path, [Variant("internal", "ok", CASE, EVAL, "case", "id:", None, "")], "http://127.0.0.1:9/v1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checks, "compile_check", broken)
    assert cli.main(["validate", "evals/ok.yaml"]) == 3
    err = capsys.readouterr().err
    assert "cases/ok.yaml: internal error while reading this file: KeyError: 'a bug'" in err
    assert "a bug in promptvcr" in err and "Traceback" not in err


def test_a_defaults_template_problem_is_said_once_with_the_count(tmp_path: Path) -> None:
    case = "defaults:\n  model: m\n  messages:\n    - {role: user, content: '{{ nope }}'}\ncases:\n"
    case += "".join(f"  - id: c{i}\n" for i in range(5))
    write(tmp_path, [Variant("once", "once", case, EVAL, "case", "nope", None, "")], "http://127.0.0.1:9/v1")
    with pytest.raises(evals.InputError) as info:
        evals.load(tmp_path / "evals" / "once.yaml", tmp_path)
    (problem,) = info.value.problems
    assert problem.line == 4 and problem.pointer == "/defaults/messages/0/content"
    assert problem.message.endswith("[5 of 5 cases: 'c0', 'c1', 'c2', …]"), problem.message


def test_a_json_reason_says_at_once() -> None:
    (result,) = checks.run_checks([checks.compile_check("json_valid", True)], {}, completion('{"a": "x'))
    assert result.reason == "not valid JSON: Unterminated string starting at line 1 column 7"


def test_an_answer_nested_past_the_stack_is_not_json() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (result,) = checks.run_checks([checks.compile_check("json_valid", True)], {}, completion(deep))
    assert not result.passed and "nested deeper" in result.reason


LAUGHS_TOP = laughs("z") + "\n"
TAMPERED: dict[str, Any] = {  # case id → how its recorded cassette is edited (text → text, or bytes appended)
    "python-tag": lambda t: t.replace(
        "interactions:", "x: !!python/object/apply:os.system ['touch pwned']\ninteractions:"
    ),
    "not-yaml": lambda t: t + "\n  - : : [\n",
    "not-utf-8": b"\n# caf\xe9\n",
    "laughs": lambda t: LAUGHS_TOP + t,
    "not-a-cassette": lambda t: "- just\n- a list\n",
}


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_tampered_cassette_is_a_clear_error_in_replay_and_status(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Cassettes are committed, so edited in pull requests too: none runs code, hangs, or ends in a traceback."""
    answering_project(
        tmp_path, fake_openai.base_url, [{"id": name, "expect": [{"json_valid": True}]} for name in TAMPERED]
    )
    done, _ = run_cli(tmp_path, "run", "--record-mode", "once")
    assert done.returncode == 0, done.stdout[-2000:]
    fake_openai.received.clear()
    for name, edit in TAMPERED.items():
        path = tmp_path / "cassettes" / "answers" / "v" / f"{name}.yaml"
        if isinstance(edit, bytes):
            path.write_bytes(path.read_bytes() + edit)
        else:
            path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    replay, _ = run_cli(tmp_path, "run")
    out = replay.stdout + replay.stderr
    assert replay.returncode == 1, out[-3000:]  # the unreadable ones error; the run finishes with its report
    assert "Traceback" not in out
    rows = results(tmp_path)
    for name in ("python-tag", "not-yaml", "not-utf-8", "not-a-cassette"):
        assert (rows[name]["error"], rows[name]["outcome"]) == ("config", "errored"), name
        assert "cannot read the cassette" in rows[name]["error_message"], name
    assert rows["laughs"]["outcome"] == "passed"  # an alias nothing reads expands nothing
    status = subprocess.run(
        [sys.executable, "-m", "harness.cli", "status"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 1 and "Traceback" not in status.stdout + status.stderr, status.stderr
    assert status.stdout.count("unreadable cassette") == 4, status.stdout
    assert not (tmp_path / "pwned").exists()
    assert fake_openai.received == []


def link_to_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.mkdir()


def oversized(path: Path) -> None:
    path.write_text(CASE + "#" * (11 * 2**20) + "\n", encoding="utf-8")


NOT_FILES = [  # (id, what the file is made as, where: "eval" or "case", what is said)
    ("eval-link-to-dev-zero", link_to_zero, "eval", "not a regular file"),
    ("eval-fifo", fifo, "eval", "not a regular file"),
    ("eval-folder", folder, "eval", "not a regular file"),
    ("case-link-to-dev-zero", link_to_zero, "case", "case file not found"),
    ("case-fifo", fifo, "case", "case file not found"),
    ("case-oversized", oversized, "case", "larger than 10 MiB"),
]


@pytest.mark.parametrize("index", range(len(NOT_FILES)))
def test_a_file_that_is_not_a_text_file_is_refused_without_reading_it(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], watchdog: None
) -> None:
    """A pull request can add a link to /dev/zero or a pipe: read, it would never end or block forever."""
    id, make, where, said = NOT_FILES[index]
    v = Variant("not-files", id, CASE, EVAL, where, "name:", None, said)
    write(tmp_path, [v], "http://127.0.0.1:9/v1")
    target = tmp_path / ("evals" if where == "eval" else "cases") / f"{id}.yaml"
    target.unlink()
    make(target)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", str(target.relative_to(tmp_path)) if where == "eval" else f"evals/{id}.yaml"]) == 2
    assert cli.main(["validate"]) == 2  # every eval in evals/, found by a glob
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_cassette_linked_to_another_file_is_not_quoted(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """A cassette is a committed file: one that is a link to a secret must not print the secret in the CI log."""
    answering_project(tmp_path, fake_openai.base_url, [{"id": "one", "expect": [{"json_valid": True}]}])
    done, _ = run_cli(tmp_path, "run", "--record-mode", "once")
    assert done.returncode == 0, done.stdout[-2000:]
    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY: x: y\n")
    cassette = tmp_path / "cassettes" / "answers" / "v" / "one.yaml"
    cassette.unlink()
    cassette.symlink_to(secret)
    replay, _ = run_cli(tmp_path, "run")
    status = subprocess.run(
        [sys.executable, "-m", "harness.cli", "status"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    for out in (
        replay.stdout + replay.stderr,
        status.stdout + status.stderr,
        results(tmp_path)["one"]["error_message"],
    ):
        assert "cannot read the cassette" in out or "unreadable cassette" in out, out[-2000:]
        assert "aws_secret" not in out and "wJalr" not in out and "Traceback" not in out


@pytest.mark.slow  # a whole run, a browser or the whole corpus: make test-slow
def test_a_missing_recording_is_said_once_with_the_count(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Replaying more samples than were recorded: every sample past the recording misses it for one reason."""
    answering_project(tmp_path, fake_openai.base_url, [{"id": "one", "expect": [{"json_valid": True}]}])
    done, _ = run_cli(tmp_path, "run", "--record-mode", "once")
    assert done.returncode == 0, done.stdout[-2000:]
    replay, _ = run_cli(tmp_path, "run", "--samples", "4")
    out = replay.stdout + replay.stderr
    assert replay.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert "3 of 4 samples errored:\n  3× missing_recording: no recording for case 'one'" in out, out[-3000:]
    # once in the item's report (the -ra summary line repeats its first line, as wide as the terminal allows)
    report = out.split("short test summary info")[0]
    assert report.count("missing_recording:") == 1, out[-3000:]


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ '%d' | format(12345678) }}", "12345678"),
        ("{{ '{:,}'.format(12345678) }}", "12,345,678"),
        ("{{ '%5.2f' % 3.14159 }}", " 3.14"),
        ("{{ 'ab' | center(6) }}", "  ab  "),
        ("{{ 2 ** 64 }} {{ 'ab' * 3 }} {{ [0] * 2 }}", "18446744073709551616 ababab [0, 0]"),
        ("{{ range(3) | list }} {{ 7 * 10 ** 100 > 0 }}", "[0, 1, 2] True"),
    ],
)
def test_the_template_limits_leave_ordinary_templates_alone(template: str, rendered: str) -> None:
    from harness.load import _render as render

    assert render.render(template, {}) == rendered


def test_our_own_bug_while_collecting_ends_the_run_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As validate does: a user's mistake is exit 2, a bug of ours met while reading their files exit 3."""
    from harness.load import schemas

    def broken(doc: Any, name: str) -> Any:
        raise KeyError("a bug")

    write(tmp_path, [Variant("internal", "ok", CASE, EVAL, "case", "id:", None, "")], "http://127.0.0.1:9/v1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(schemas, "validate", broken)
    assert cli.main(["run", "evals/ok.yaml", "--", "-p", "no:cacheprovider"]) == pytest.ExitCode.INTERNAL_ERROR
    out = capsys.readouterr().out
    assert "internal error while reading this file: KeyError: 'a bug'" in out
    assert "Traceback" not in out
