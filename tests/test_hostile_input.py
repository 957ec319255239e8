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
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import checks, cli, evals
from tests.fakeserver import FakeOpenAI, Reply, completion

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


CASE = """\
cases:
  - id: greet
    model: fake-model
    temperature: 0.2
    vars: {name: Ada}
    messages:
      - role: user
        content: Say hello to {{ name }} in JSON.
    expect:
      - json_valid: true
      - contains: ok
"""

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

VARIANTS: list[Variant] = []


def bad_case(kind: str, id: str, old: str, new: str, needle: str, pointer: str | None, message: str) -> None:
    """A variant whose case file has ``old`` replaced by ``new``."""
    assert old in CASE
    VARIANTS.append(Variant(kind, id, CASE.replace(old, new), EVAL, "case", needle, pointer, message))


def bad_eval(kind: str, id: str, old: str, new: str, needle: str, pointer: str | None, message: str) -> None:
    assert old in EVAL
    VARIANTS.append(Variant(kind, id, CASE, EVAL.replace(old, new), "eval", needle, pointer, message))


def bad_template(id: str, template: str, message: str, kind: str = "template") -> None:
    old = "content: Say hello to {{ name }} in JSON."
    bad_case(kind, id, old, f"content: {template!r}", "content:", "/cases/0/messages/0/content", message)


CONTENT = "/cases/0/messages/0/content"

# 1. Templates that fail while rendering: the template's own code, so the file's problem.
bad_template("zero-division", "{{ 1 / 0 }}", "ZeroDivisionError")
bad_template("type-error", "{{ 'a' + 1 }}", "TypeError")
bad_template("huge-range", "{{ range(10**6) | list }}", "Range too big")
bad_template("include", "{% include 'other.j2' %}", "include, import and extends are not available")
bad_template("import", "{% import 'macros.j2' as m %}", "include, import and extends are not available")
bad_template("extends", "{% extends 'base.j2' %}", "include, import and extends are not available")
bad_template("pop-empty", "{{ [].pop() }}", "IndexError")
bad_template("endless-loops", "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "took more")
bad_template("string-bomb", "{{ 'x' * 10**9 }}", "too large")
bad_template("power-bomb", "{{ 10 ** (10 ** 9) }}", "too large")
bad_template("filter-bomb", "{{ 'x' | center(10**9) }}", "is refused")
bad_template("format-bomb", "{{ '%0999999999d' % 1 }}", "too large")
bad_template("method-format-bomb", "{{ '{:>9999999999}'.format(1) }}", "is refused")
bad_template("output-bomb", "{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", "renders more than")

# 2. Numbers that pass a minimum/maximum but aren't what the field means.
bad_case("numbers", "nan-temperature", "temperature: 0.2", "temperature: .nan", "temperature", "/cases/0/temperature", "not a finite number")
bad_case("numbers", "inf-top-p", "temperature: 0.2", "top_p: -.inf", "top_p", "/cases/0/top_p", "not a finite number")
bad_case("numbers", "overflow-temperature", "temperature: 0.2", "temperature: 1.0e+999", "temperature", "/cases/0/temperature", "not a finite number")
bad_case("numbers", "inf-min-pass-rate", "temperature: 0.2", "min_pass_rate: .inf", "min_pass_rate", "/cases/0/min_pass_rate", "not a finite number")
bad_case("numbers", "float-samples", "temperature: 0.2", "samples: 2.0", "samples", "/cases/0/samples", "expected a whole number, got 2.0")
bad_case("numbers", "float-max-tokens", "temperature: 0.2", "max_tokens: 50.0", "max_tokens", "/cases/0/max_tokens", "write 50")
bad_eval("numbers", "float-eval-samples", "variants:", "samples: 3.0\nvariants:", "samples: 3.0", "/samples", "whole number")
bad_eval("numbers", "float-concurrency", "variants:", "limits: {concurrency: 4.0}\nvariants:", "concurrency: 4.0", "/limits/concurrency", "whole number")
bad_eval("numbers", "float-min-n", "value: 0.5}", "value: 0.5, min_n: 5.0}", "min_n", "/gates/0/min_n", "whole number")
bad_eval("numbers", "nan-gate-value", "value: 0.5}", "value: .nan}", "value: .nan", "/gates/0/value", "not a finite number")
bad_eval("numbers", "inf-timeout", '"{url}"}', '"{url}", timeout_s: .inf}', "timeout_s", "/endpoint/timeout_s", "not a finite number")
bad_eval("numbers", "fractional-retries", '"{url}"}', '"{url}", max_retries: 1.5}', "max_retries", "/endpoint/max_retries", "expected integer")


def laughs(anchor: str, levels: int = 9) -> str:
    """A "billion laughs" block: level i is ten aliases of level i - 1 (10**levels values), indented as a mapping."""
    lines = [f"{anchor}0: &{anchor}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{anchor}{i}: &{anchor}{i} [{', '.join([f'*{anchor}{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines)


# 3. YAML alias expansion.
VARS = "    vars: {name: Ada}"
indented = "\n".join("      " + line for line in laughs("l").splitlines())
# Walking level i again costs 11**i-ish values (each alias and all it holds): ALIAS_BUDGET (100 000) runs out in level 4.
bad_case("aliases", "laughs-in-vars", VARS, f"    vars:\n{indented}", "l4:", "/cases/0/vars/l4/…", "YAML aliases expand")
bad_eval("aliases", "laughs-in-eval", "variants:", f"{laughs('x')}\nvariants:", "x4:", "/x4/…", "YAML aliases expand")
bad_case("aliases", "alias-loop-map", VARS, "    vars: &v {name: Ada, me: *v}", "&v", "/cases/0/vars/me", "a loop")
bad_case("aliases", "alias-loop-list", VARS, "    vars: {name: Ada, me: &s [a, *s]}", "&s", "/cases/0/vars/me/1", "a loop")
bad_case("aliases", "deep-nesting", VARS, "    vars: {name: Ada, deep: " + "[" * 150 + "]" * 150 + "}", "deep:", "/cases/0/vars/deep/0/…", "nested more than 100")
mapping_laughs = "\n".join(
    ["    m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol, i: lol, j: lol}"]
    + [f"    m{i}: &m{i} {{{', '.join(f'{k}: *m{i - 1}' for k in 'abcdefghij')}}}" for i in range(1, 8)]
)
bad_case("aliases", "laughs-of-mappings", "cases:", f"defaults:\n  vars:\n{mapping_laughs}\ncases:", "m4:", "/defaults/vars/m4/…", "YAML aliases expand")

# 4. Encoding: bytes that aren't UTF-8 text, control characters, values JSON has no form for.
latin = CASE.encode().replace(b"Say hello", b"Say h\xe9llo")
VARIANTS.append(Variant("encoding", "latin-1-case", latin, EVAL, "case", "content:", None, "not UTF-8 text"))
latin_eval = EVAL.encode().replace(b"v: {max_tokens", b"v\xe9: {max_tokens")
VARIANTS.append(Variant("encoding", "latin-1-eval", CASE, latin_eval, "eval", "max_tokens", None, "not UTF-8 text"))
nul = CASE.encode().replace(b"role: user", b"role: us\x00er")
VARIANTS.append(Variant("encoding", "nul-byte", nul, EVAL, "case", "role:", None, "U+0000 is not allowed"))
bell = EVAL.encode().replace(b"  - cases/", b"  - \x07cases/")
VARIANTS.append(Variant("encoding", "control-char", CASE, bell, "eval", "\x07", None, "U+0007 is not allowed"))
utf16 = CASE.encode("utf-16")
VARIANTS.append(Variant("encoding", "utf-16-file", utf16, EVAL, "case", "c\x00a\x00s\x00e\x00s\x00:", None, "not UTF-8 text"))
bad_case("encoding", "timestamp-tag", "      - contains: ok", "      - equals: !!timestamp 2024-01-01", "!!timestamp", None, "!!timestamp value has no JSON form")
bad_case("encoding", "binary-tag", VARS, "    vars: {name: !!binary aGVsbG8=}", "!!binary", None, "!!binary value has no JSON form")
bad_case("encoding", "set-tag", VARS, "    vars: {name: !!set {a, b}}", "!!set", None, "!!set value has no JSON form")

# 6. JSON pointers that can't be valid (RFC 6901: a ~ is followed by 0 or 1; a pointer starts with /).
for id, check, pointer_at in (
    ("pointer-tilde-2", "contains: {value: ok, path: /a~2}", "/cases/0/expect/1/contains/path"),
    ("pointer-trailing-tilde", "regex: {pattern: ok, path: /a~}", "/cases/0/expect/1/regex/path"),
    ("pointer-no-slash", "equals: {value: 1, path: a/b}", "/cases/0/expect/1/equals/path"),
    ("pointer-tilde-letter", "max_chars: {value: 3, path: /~x}", "/cases/0/expect/1/max_chars/path"),
    ("pointer-not-contains", "not_contains: {value: x, path: /ok/~9}", "/cases/0/expect/1/not_contains/path"),
    ("pointer-judge", "judge: {rubric: polite, threshold: 0.5, model: m, path: /x~}", "/cases/0/expect/1/judge/path"),
):
    bad_case("pointers", id, "      - contains: ok", f"      - {check}", check.split(":")[0], pointer_at, "RFC 6901 pointer")

# Classes that held before: they must keep holding.
bad_case("yaml-syntax", "mapping-in-value", "content: Say hello to {{ name }} in JSON.", "content: Say: hello", "Say: hello", None, "YAML syntax error")
bad_case("yaml-syntax", "unclosed-flow", VARS, "    vars: {name: Ada\n    samples: 2", "samples: 2", None, "YAML syntax error")
bad_case("yaml-syntax", "tab-indent", "    temperature: 0.2", "\ttemperature: 0.2", "\ttemperature", None, "YAML syntax error")
bad_case("yaml-syntax", "bad-dedent", "    model: fake-model", "    model: fake-model\n   stray: 1", "stray", None, "YAML syntax error")
bad_case("yaml-syntax", "alias-undefined", VARS, "    vars: {name: *nowhere}", "*nowhere", None, "YAML syntax error")
bad_case("duplicate-keys", "dup-model", "    temperature: 0.2", "    model: other", "model: other", "/cases/0/model", "duplicate key 'model'")
bad_case("duplicate-keys", "dup-var", VARS, "    vars: {name: Ada, name: Bob}", "Bob", "/cases/0/vars/name", "duplicate key 'name'")
bad_case("duplicate-keys", "dup-id", "    model: fake-model", "    model: fake-model\n    id: again", "id: again", "/cases/0/id", "duplicate key 'id'")
bad_eval("duplicate-keys", "dup-variant", "  v: {max_tokens: 50}", "  v: {max_tokens: 50}\n  v: {max_tokens: 9}", "max_tokens: 9", "/variants/v", "duplicate key 'v'")
bad_eval("duplicate-keys", "dup-name", "variants:", "name: again\nvariants:", "name: again", "/name", "duplicate key 'name'")
bad_case("unknown-keys", "typo-temperature", "    temperature: 0.2", "    temprature: 0.2", "temprature", "/cases/0/temprature", "unknown key")
bad_case("unknown-keys", "typo-long-check", "      - contains: ok", "      - contains: {value: ok, paht: /a}", "paht", "/cases/0/expect/1/contains/paht", "unknown key")
bad_eval("unknown-keys", "typo-endpoint", '"{url}"}', '"{url}", timeout: 3}', "timeout:", "/endpoint/timeout", "unknown key")
bad_eval("unknown-keys", "typo-gate", "value: 0.5}", "value: 0.5, varient: v}", "varient", "/gates/0/varient", "unknown key")
bad_eval("unknown-keys", "typo-top-level", "variants:", "budget: 3\nvariants:", "budget:", "/budget", "unknown key")
bad_case("wrong-types", "temperature-word", "temperature: 0.2", "temperature: hot", "temperature", "/cases/0/temperature", "expected number")
bad_case("wrong-types", "samples-string", "temperature: 0.2", "samples: '3'", "samples", "/cases/0/samples", "expected integer")
bad_case("wrong-types", "messages-string", "    messages:\n      - role: user\n", "    messages: hi\n    m:\n      - role: user\n", "messages: hi", "/cases/0/messages", "")
bad_case("wrong-types", "bool-temperature", "temperature: 0.2", "temperature: yes", "temperature", "/cases/0/temperature", "expected number")
bad_eval("wrong-types", "variants-list", "  v: {max_tokens: 50}", "  - v", "variants:", "/variants", "expected object")
bad_case("bad-ids", "id-with-space", "id: greet", "id: has space", "has space", "/cases/0/id", "")
bad_case("bad-ids", "id-empty", "id: greet", "id: ''", "id: ''", "/cases/0/id", "")
bad_case("bad-ids", "id-number", "id: greet", "id: 123", "id: 123", "/cases/0/id", "expected string")
bad_eval("bad-ids", "eval-name-slash", "name: {id}", "name: bad/{id}", "name: bad", "/name", "")
bad_eval("bad-ids", "variant-name-space", "  v: {max_tokens: 50}", "  a b: {max_tokens: 50}", "a b", "/variants/a b", "")
for id, tag in (
    ("python-apply", "!!python/object/apply:os.system ['echo pwned']"),
    ("python-name", "!!python/name:os.system"),
    ("python-object", "!!python/object:object {}"),
    ("python-tuple", "!!python/tuple [1, 2]"),
    ("python-module", "!!python/module:os"),
):
    bad_case("python-tags", id, VARS, f"    vars:\n      name: {tag}", "!!python", None, "could not determine a constructor")
for id, template in (
    ("dunder-class", "{{ name.__class__ }}"),
    ("mro-walk", "{{ ''.__class__.__mro__ }}"),
    ("globals", "{{ cycler.__init__.__globals__ }}"),
    ("template-context", "{{ self._TemplateReference__context }}"),
    ("lipsum-globals", "{{ lipsum.__globals__['os'] }}"),
):
    bad_template(id, template, "template", kind="jinja-sandbox")
BOM = "\ufeff"
bom_typo = BOM + CASE.replace("temperature", "temprature")
VARIANTS.append(Variant("bom-crlf", "bom-unknown-key", bom_typo, EVAL, "case", "temprature", "/cases/0/temprature", "unknown key"))
crlf_dup = CASE.replace("    temperature: 0.2", "    model: other").replace("\n", "\r\n")
VARIANTS.append(Variant("bom-crlf", "crlf-dup-key", crlf_dup, EVAL, "case", "model: other", "/cases/0/model", "duplicate key"))
crlf_nan = BOM + CASE.replace("temperature: 0.2", "temperature: .nan").replace("\n", "\r\n")
VARIANTS.append(Variant("bom-crlf", "bom-crlf-nan", crlf_nan, EVAL, "case", ".nan", "/cases/0/temperature", "finite"))
crlf_tpl = CASE.replace("content: Say hello to {{ name }} in JSON.", "content: '{{ 1 / 0 }}'").replace("\n", "\r\n")
VARIANTS.append(Variant("bom-crlf", "crlf-template", crlf_tpl, EVAL, "case", "content:", CONTENT, "ZeroDivisionError"))
crlf_eval = EVAL.replace("variants:", "varients: {}\nvariants:").replace("\n", "\r\n")
VARIANTS.append(Variant("bom-crlf", "crlf-eval", CASE, crlf_eval, "eval", "varients", "/varients", "unknown key"))


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
