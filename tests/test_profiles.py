"""Keys per environment: profiles.yaml chooses the key variable and base_url of `endpoint: openai`."""

from __future__ import annotations

import pytest
import yaml

from harness.cli import _main as cli
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

DEV_KEY, PROD_KEY = "dev-key-0000-1111-2222", "prod-key-3333-4444-5555"


def _project(pytester: pytest.Pytester, base_url: str) -> None:
    root = ep.init_project(pytester.path)
    cases = ep.write_cases(root, "c", [ep.json_case("alpha")])
    ev = ep.write_eval(root, "e", base_url=base_url, cases=[cases], variants={"v": {"model": "m"}}, samples=1)
    ev.write_text(yaml.safe_dump(yaml.safe_load(ev.read_text()) | {"endpoint": "openai"}, sort_keys=False))
    profiles = {
        "default": "dev",
        "profiles": {
            "dev": {"api_key_env": "PVCR_KEY_DEV", "base_url": base_url},
            "prod": {"api_key_env": "PVCR_KEY_PROD", "base_url": base_url},
        },
    }
    (root / "profiles.yaml").write_text(yaml.safe_dump(profiles), encoding="utf-8")


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTVCR_PROFILE", "")  # recorded as absent: --profile's setting is undone after the test
    monkeypatch.setenv("PVCR_KEY_DEV", DEV_KEY)
    monkeypatch.setenv("PVCR_KEY_PROD", PROD_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.mark.usefixtures("keys")
def test_the_default_profile_and_another_chosen_with_profile(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester, fake_openai.base_url)
    assert pytester.runpytest("evals", "--record-mode", "once").ret == pytest.ExitCode.OK
    assert pytester.runpytest("evals", "--record-mode", "all", "--profile", "prod").ret == pytest.ExitCode.OK
    sent = [r.headers["authorization"] for r in fake_openai.chat_requests]
    assert sent == [f"Bearer {DEV_KEY}", f"Bearer {PROD_KEY}"]


@pytest.mark.usefixtures("keys")
def test_an_unknown_profile_is_refused_before_anything_is_sent(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    _project(pytester, fake_openai.base_url)
    result = pytester.runpytest("evals", "--record-mode", "once", "--profile", "staging")
    assert result.ret != pytest.ExitCode.OK
    assert "no profile 'staging' in" in result.stdout.str() and "(profiles: dev, prod)" in result.stdout.str()
    assert fake_openai.chat_requests == []


@pytest.mark.usefixtures("keys")
def test_doctor_shows_the_profile_and_only_the_end_of_its_key(
    pytester: pytest.Pytester,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _project(pytester, fake_openai.base_url)
    monkeypatch.chdir(pytester.path)
    assert cli.main(["--profile", "prod", "doctor"]) == 0
    out = capsys.readouterr().out
    assert f"endpoint openai {fake_openai.base_url} (profile prod)" in out
    assert "PVCR_KEY_PROD: set (…5555)" in out
    assert PROD_KEY not in out and PROD_KEY[:-4] not in out


@pytest.mark.usefixtures("keys")
def test_the_profile_is_a_parameter_not_an_environment_variable(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--profile` is read at the command line's edge and passed down: the environment is left as it was, and
    loading an eval with a profile named needs no environment at all."""
    import os

    from harness.load import _evals as evals

    monkeypatch.delenv("PROMPTVCR_PROFILE")
    _project(pytester, fake_openai.base_url)
    monkeypatch.chdir(pytester.path)
    assert cli.main(["--profile", "prod", "validate"]) == 0
    assert "PROMPTVCR_PROFILE" not in os.environ
    (run,) = evals.load(pytester.path / "evals" / "e.yaml", pytester.path, profile="prod").runs
    assert (run.variant.endpoint.profile, run.variant.endpoint.api_key_env) == ("prod", "PVCR_KEY_PROD")
    (run,) = evals.load(pytester.path / "evals" / "e.yaml", pytester.path).runs
    assert run.variant.endpoint.profile == "dev"  # the file's default
