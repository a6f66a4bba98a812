"""Messages: every template renders in every tone; missing fields and unsafe templates are refused."""

from __future__ import annotations

import email
import io
import zipfile
from dataclasses import replace
from datetime import date
from email import policy as email_policy

import pytest

from dashboard.errors import MessageTemplateError
from dashboard.messages import (
    available_templates,
    build_context,
    check_template_source,
    eml_zip,
    message_for_line,
    render_message,
    sample_context,
    to_eml,
)
from dashboard.policy import ACTIONS, TONES, default_policy

ONE_INVOICE = [
    {
        "invoice_id": "INV-7",
        "invoice_date": date(2025, 5, 1),
        "due_date": date(2025, 5, 31),
        "open_amount": 1234.5,
        "days_past_due": 10,
    }
]


def test_there_is_a_template_for_every_action() -> None:
    templates = set(available_templates())
    assert len(templates) == len(ACTIONS)
    assert set(default_policy()["template_id"].drop_nulls()) <= templates


@pytest.mark.parametrize("template_id", available_templates())
@pytest.mark.parametrize("tone", TONES)
def test_every_template_renders_text_and_html_in_every_tone(template_id: str, tone: str) -> None:
    message = render_message(template_id, tone=tone, context=sample_context(), to="ap@acme.test")
    assert message.subject and "\n" not in message.subject
    for body in (message.text, message.html):
        assert "INV-1001" in body and "INV-1002" in body
        assert "1,730.50 EUR" in body  # 1,250.00 + 480.50
        assert "https://pay.example.com/?customer=C0001" in body
    assert message.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<p>" not in message.text


def test_tone_changes_the_wording() -> None:
    texts = {tone: render_message("gentle_reminder", tone=tone, context=sample_context()).text for tone in TONES}
    assert len(set(texts.values())) == 3
    assert "require payment now" in texts["firm"]


def test_a_missing_merge_field_is_refused_with_template_and_field_names() -> None:
    context = sample_context()
    del context["payment_link"]
    with pytest.raises(MessageTemplateError, match="'credit_hold' needs the merge field 'payment_link'"):
        render_message("credit_hold", tone="firm", context=context)


def test_a_new_template_using_an_unknown_field_is_refused_with_its_name() -> None:
    source = "{% extends layout %}{% block subject %}Hi{% endblock %}{% block opening %}Your rep is {{ account_manager }}.{% endblock %}"
    with pytest.raises(MessageTemplateError, match="'friendly_nudge' needs the merge field 'account_manager'"):
        check_template_source("friendly_nudge", source)
    good = "{% extends layout %}{% block subject %}Hi {{ customer_name }}{% endblock %}{% block opening %}Please pay.{% endblock %}"
    check_template_source("friendly_nudge", good)  # renders in both layouts and all tones: no error


def test_templates_are_sandboxed() -> None:
    source = (
        "{% extends layout %}{% block opening %}{{ customer_name.__class__.__mro__[1].__subclasses__() }}{% endblock %}"
    )
    with pytest.raises(MessageTemplateError, match="'evil'"):
        check_template_source("evil", source)


def test_unknown_template_and_tone_are_refused() -> None:
    with pytest.raises(MessageTemplateError, match="no message template 'thank_you'"):
        render_message("thank_you", tone="neutral", context=sample_context())
    with pytest.raises(MessageTemplateError, match="Tone 'angry'"):
        render_message("call", tone="angry", context=sample_context())


def test_html_escapes_merge_fields_and_text_does_not() -> None:
    context = build_context(customer_id="C1", customer_name="Smith & <Sons>", invoices=ONE_INVOICE, currency="USD")
    message = render_message("gentle_reminder", tone="friendly", context=context)
    assert "Smith &amp; &lt;Sons&gt;" in message.html and "<Sons>" not in message.html
    assert "Dear Smith & <Sons>," in message.text


def test_eml_draft_has_both_parts_and_headers() -> None:
    message = render_message("escalation_notice", tone="neutral", context=sample_context(), to="ap@acme.test")
    parsed = email.message_from_bytes(to_eml(message), policy=email_policy.default)
    assert parsed["To"] == "ap@acme.test"
    assert parsed["Subject"] == message.subject
    assert parsed["X-Unsent"] == "1"
    assert parsed.get_body(("plain",)).get_content().splitlines() == message.text.splitlines()
    assert "<table" in parsed.get_body(("html",)).get_content()


def test_message_for_a_worklist_line_and_zip_of_drafts() -> None:
    line = {
        "customer_id": "C1",
        "customer_name": "Acme",
        "invoices": ONE_INVOICE,
        "currency": "USD",
        "collector": "Ana Lima",
        "template_id": "value_added_follow_up",
        "tone": "neutral",
        "email": "ap@acme.test",
    }
    message = message_for_line(line)
    assert "Ana Lima" in message.text and "1,234.50 USD" in message.text and message.to == "ap@acme.test"
    archive = zipfile.ZipFile(io.BytesIO(eml_zip([message, message])))
    assert archive.namelist() == ["0001_C1_value_added_follow_up.eml", "0002_C1_value_added_follow_up.eml"]


def test_a_line_break_in_the_customer_email_never_breaks_the_draft() -> None:
    injected = "ap@x.example\r\nBcc: evil@x.example"
    line = {
        "customer_id": "C1",
        "customer_name": "Acme\r\nBcc: evil@x.example",
        "invoices": ONE_INVOICE,
        "currency": "USD",
        "collector": "Ana Lima",
        "template_id": "gentle_reminder",
        "tone": "neutral",
        "email": injected,
    }
    message = message_for_line(line)
    assert message.to is None  # left out, not guessed at
    assert message.notes == (
        "The customer's email 'ap@x.example\\r\\nBcc: evil@x.example' contains a line break or another control "
        "character, so this draft has no recipient: correct the email in the customers file.",
    )
    assert "\n" not in message.subject and "\r" not in message.subject
    for raw in (to_eml(message), to_eml(replace(message, to=injected))):  # also a Message built by hand
        parsed = email.message_from_bytes(raw, policy=email_policy.default)
        assert parsed["To"] is None and parsed["Bcc"] is None
        assert b"\r\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]  # no header line was injected
    assert zipfile.ZipFile(io.BytesIO(eml_zip([message]))).namelist() == ["0001_C1_gentle_reminder.eml"]


def test_a_clean_email_is_kept_with_no_note() -> None:
    line = {
        "customer_id": "C2",
        "customer_name": "Globex",
        "invoices": ONE_INVOICE,
        "currency": "EUR",
        "collector": None,
        "template_id": "call",
        "tone": "firm",
        "email": "  ap@globex.test ",
    }
    message = message_for_line(line)
    assert (message.to, message.notes) == ("ap@globex.test", ())
