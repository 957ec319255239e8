"""A message without a jinja2 tag is used as it is, without jinja2 (harness.load._render): what jinja2's sandbox would
have rendered from it, the same text; a template is compiled once however many cases share it."""

from __future__ import annotations

import pytest

from harness.load import _render as render

PLAIN = [
    'Answer only with JSON: {"joke": "<the joke>"}.',
    "{ {x} } and }} and %} and #} and {-",
    "a trailing newline\n",
    "two\n\nlines\n\n",
    "naïve — ünïcödé ✓",
    "",
    "{",
    "}{",
]


@pytest.mark.parametrize("text", PLAIN)
def test_text_without_a_tag_renders_as_jinja2_renders_it(text: str) -> None:
    assert render.render(text, {"x": 1}) == render._env().from_string(text).render(x=1) == text


@pytest.mark.parametrize("text", ["{{ x }}", "{% if x %}y{% endif %}", "a {# note #}b", "line\r\nbreak"])
def test_a_tag_or_a_carriage_return_goes_through_jinja2(text: str) -> None:
    assert render.render(text, {"x": 1}) == render._env().from_string(text).render(x=1) != text


def test_a_template_is_compiled_once_for_every_case_that_shares_it() -> None:
    template = "Write about {{ topic }} (a template of this test only)."
    before = render._compiled.cache_info()
    assert [render.render(template, {"topic": t}) for t in ("cats", "dogs")] == [
        "Write about cats (a template of this test only).",
        "Write about dogs (a template of this test only).",
    ]
    after = render._compiled.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


def test_an_undefined_variable_is_still_said() -> None:
    with pytest.raises(render.TemplateProblem, match="undefined template variable: 'nope' is undefined"):
        render.render("{{ nope }}", {})
