"""The template sandbox has limits: time, loop steps, output and value sizes; whatever a template
raises (OverflowError, RecursionError, ZeroDivisionError ...) becomes a plain MessageTemplateError."""

from __future__ import annotations

import time

import pytest

from dashboard.errors import MessageTemplateError
from dashboard.messages import check_template_source, render_message, sample_context
from dashboard.sandbox import MAX_STEPS, MAX_TEXT


def _opening(body: str) -> str:
    return "{% extends layout %}{% block subject %}Hi{% endblock %}{% block opening %}" + body + "{% endblock %}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # 10^10 steps: ran past 30 s before; stopped at the step budget in well under a second
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            f"does more than {MAX_STEPS:,} loop steps",
        ),
        # a gigabyte string: reached MemoryError before; refused before it is built
        ("{{ 'a' * 10**9 }}", "builds a repeated value of 1,000,000,000"),
        ("{{ 'a' * 999999 ~ 'b' * 999999 }}", "builds a text of 1,999,998"),
        ("{{ 'x'|center(10**9) }}", "passes the number 1000000000"),
        ("{{ '%1000000000s' % 'x' }}", "formats with a width of a million"),
        ("{{ '{:>1000000000}'.format('x') }}", "formats with a width of a million"),
        ("{{ 7 ** 999999999 }}", "computes a power with more than 10,000 digits"),
        # output built a little at a time, including text captured by a set block
        ("{% set s %}{% for i in range(5000) %}{{ 'y' * 900 }}{% endfor %}{% endset %}", "writes more than 1,000,000"),
        ("{% for i in range(100000) %}" + "z" * 50 + "{% endfor %}", "writes more than 1,000,000"),
        ("{% for i in range(100000) %}{{ 'w'|center(999999) }}{% endfor %}", "writes more than 1,000,000"),
    ],
    ids=[
        "nested-ranges",
        "gigabyte",
        "concat",
        "center",
        "percent-width",
        "format-width",
        "power",
        "set-block",
        "literal-loop",
        "constant-output-loop",
    ],
)
def test_a_template_over_a_limit_is_stopped_with_a_plain_reason(body: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(MessageTemplateError) as stopped:
        check_template_source("greedy", _opening(body))
    assert time.monotonic() - started < 10
    message = str(stopped.value)
    assert message.startswith("Message template 'greedy' was stopped: it "), message
    assert reason in message, message


def test_a_slow_template_is_stopped_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.sandbox as sandbox

    monkeypatch.setattr(sandbox, "RENDER_SECONDS", 0.2)
    body = "{% for a in range(300) %}{{ range(3000)|sort|join|length }}{% endfor %}"
    with pytest.raises(MessageTemplateError, match="takes longer than 0.2 seconds"):
        check_template_source("slow", _opening(body))


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("{{ 10.0 ** 400 }}", "OverflowError"),
        ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", "RecursionError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ '%d' % 'x' }}", "TypeError"),
    ],
)
def test_what_a_template_raises_becomes_a_plain_error(body: str, kind: str) -> None:
    with pytest.raises(MessageTemplateError, match=f"Message template 'odd' could not be rendered \\({kind}"):
        check_template_source("odd", _opening(body))


def test_a_template_nested_thousands_deep_is_refused() -> None:
    with pytest.raises(MessageTemplateError, match="nested too deeply"):
        check_template_source("deep", _opening("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"))


def test_templates_within_the_limits_still_render() -> None:
    # a customer with 5,000 open invoices is within every limit
    context = sample_context()
    context["invoices"] = context["invoices"] * 2500
    message = render_message("gentle_reminder", tone="neutral", context=context)
    assert message.text.count("Invoice INV-1001") == 2500
    assert len(message.text) < MAX_TEXT
    body = "{% for i in range(1000) %}{{ i ~ '-' ~ customer_name }}{% endfor %}{{ '=' * 80 }}{{ '%5.1f' % 3.14159 }}"
    check_template_source("busy", _opening(body))
