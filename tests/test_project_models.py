"""A project's models.yaml merged over the shipped registry: a model of the project's own priced and budgeted, a
shipped model's price brought up to date, and a bad file refused at its line with nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import _main as cli
from harness.load import _project_models as project_models
from harness.tokens import _cost as cost
from harness.tokens import _models as models
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

MODELS = """\
models:
  our-gpt4o-proxy:  # gpt-4o behind the company's gateway, under a name of its own
    encoding: o200k_base
    context_window: 8192
    price: {input: 0.5, output: 1.5, date: 2026-12-01, source: our GPU bill / tokens served}
  gpt-4o-mini:
    price: {input: 0.1, output: 0.4, date: 2026-12-01, source: renegotiated}
"""


@pytest.fixture(autouse=True)
def _shipped_only() -> object:
    yield
    models.use_project({})  # what a test merged is not left for the next one


def test_a_project_model_is_priced_and_a_shipped_one_updated(tmp_path: Path) -> None:
    shipped = models.lookup("gpt-4o-mini")
    assert shipped is not None and shipped.price is not None
    (tmp_path / "models.yaml").write_text(MODELS, encoding="utf-8")
    project_models.use(tmp_path)
    mine = models.lookup("our-gpt4o-proxy")
    assert mine is not None and mine.context_window == 8192
    assert cost.price_for("our-gpt4o-proxy") is not None
    updated = models.lookup("gpt-4o-mini")
    assert updated is not None and updated.price is not None
    assert (updated.price.input, updated.price.output) == (0.1, 0.4)
    assert updated.context_window == shipped.context_window  # a field not given is kept
    assert updated.encoding == shipped.encoding
    project_models.use(tmp_path / "elsewhere")  # a project without the file: the shipped registry again
    assert models.lookup("our-gpt4o-proxy") is None


def test_a_batch_price_prices_batched_answers_and_without_one_the_standard_price_does(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(
        MODELS + "  our-batch-proxy:\n    price: {input: 2, output: 8, date: 2026-12-01}\n"
        "    batch_price: {input: 1, output: 4, date: 2026-12-02, source: batch tier}\n",
        encoding="utf-8",
    )
    project_models.use(tmp_path)
    batched = cost.price_for("our-batch-proxy", batch=True)
    assert batched is not None and (batched.input, batched.output, batched.date) == (1.0, 4.0, "2026-12-02")
    standard = cost.price_for("our-batch-proxy")
    assert standard is not None and (standard.input, standard.output) == (2.0, 8.0)
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert cost.cost_usd(usage, batched) == 5.0 and cost.cost_usd(usage, standard) == 10.0
    fallback = cost.price_for("our-gpt4o-proxy", batch=True)  # no batch price: the standard one, an upper bound
    assert fallback is not None and (fallback.input, fallback.output) == (0.5, 1.5)


def test_estimate_prices_a_model_of_the_projects_own(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ep.init_project(tmp_path)
    cases = ep.write_cases(tmp_path, "c", [ep.json_case("alpha")])
    variants = {"v": {"model": "our-gpt4o-proxy"}}
    ep.write_eval(tmp_path, "e", base_url=fake_openai.base_url, cases=[cases], variants=variants, samples=2)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["estimate", "e"]) == 0
    assert "unpriced" in capsys.readouterr().out
    (tmp_path / "models.yaml").write_text(MODELS, encoding="utf-8")
    assert cli.main(["estimate", "e"]) == 0
    out = capsys.readouterr().out
    assert "unpriced" not in out and "$" in out
    assert fake_openai.chat_requests == []


@pytest.mark.parametrize(
    ("text", "pointer", "says"),
    [
        ("models:\n  m:\n    price: {input: -1, output: 1, date: 2026-12-01}\n", "/models/m/price/input", "minimum"),
        ("models:\n  m:\n    context_windw: 10\n", "/models/m/context_windw", "unknown key"),
        ("models:\n  m:\n    encoding: gpt2\n", "/models/m/encoding", "gpt2"),
        ("models:\n  m:\n    chat_format: mystery\n", "/models/m/chat_format", "unknown chat_format"),
        ("models:\n  m:\n    context_window: 2.0\n", "/models/m/context_window", "2"),
        ("models:\n  m:\n    shutdown: tomorrow\n", "/models/m/shutdown", "YYYY-MM-DD"),
        ("models: {}\n", "/models", "non-empty"),
        (
            "models:\n  m:\n    batch_price: {input: 1, output: -2, date: 2026-12-01}\n",
            "/models/m/batch_price/output",
            "minimum",
        ),
        ("models:\n  m:\n    batch_price: {input: 1, output: 2}\n", "/models/m/batch_price", "date"),
    ],
)
def test_a_bad_models_file_is_refused_at_its_line_and_nothing_is_sent(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    pointer: str,
    says: str,
) -> None:
    ep.init_project(tmp_path)
    cases = ep.write_cases(tmp_path, "c", [ep.json_case("alpha")])
    ep.write_eval(tmp_path, "e", base_url=fake_openai.base_url, cases=[cases], variants={"v": {"model": "m"}})
    (tmp_path / "models.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "models.yaml:" in err and pointer in err and says in err, err
    assert "Traceback" not in err
    assert cli.main(["run", "e", "--record-mode", "once", "--", "-p", "no:cacheprovider", "-q"]) != 0
    assert fake_openai.chat_requests == []
